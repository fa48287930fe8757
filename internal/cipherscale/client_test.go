package cipherscale_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

const testKey = "test-key-7f3a9c0d"

// newClient serves h and returns a client of it: no rate limit, no retries unless mod says so.
func newClient(t *testing.T, h http.Handler, mod ...func(*cipherscale.Config)) (*cipherscale.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := cipherscale.Config{
		BaseURL:    srv.URL + "/qa",
		Key:        cipherscale.StaticKey(testKey),
		QPS:        math.Inf(1),
		MaxRetries: -1,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := cipherscale.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// Ids of the tests: the client refuses any id that is not a UUID.
const (
	uid1 = "123e4567-e89b-12d3-a456-426614174001"
	uid2 = "123e4567-e89b-12d3-a456-426614174002"
	rid1 = "550e8400-e29b-41d4-a716-446655440001"
	rid2 = "550e8400-e29b-41d4-a716-446655440002"
	gid1 = "660e8400-e29b-41d4-a716-446655440001"
	gid2 = "660e8400-e29b-41d4-a716-446655440002"
)

// testID is the UUID of the ith user of a generated list.
func testID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

func retries(n int) func(*cipherscale.Config) {
	return func(c *cipherscale.Config) { c.MaxRetries = n }
}

func userJSON(id, email, status string) map[string]any {
	return map[string]any{
		"id": id, "createdAt": "2025-01-01T10:00:00Z", "updatedAt": "2025-01-01T10:00:00Z",
		"email": email, "status": status, "isOwner": false, "maxDevices": nil,
		"roles": []any{}, "groups": []any{}, "devices": []any{},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		status    int
		retryable bool
		is        func(error) bool
	}{
		{400, false, cipherscale.IsBadRequest},
		{401, false, cipherscale.IsUnauthorized},
		{403, false, cipherscale.IsForbidden},
		{404, false, cipherscale.IsNotFound},
		{409, false, cipherscale.IsConflict},
		{429, true, cipherscale.IsRateLimited},
		{500, true, nil},
		{502, true, nil},
		{503, true, nil},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 429 || tt.status == 503 {
					w.Header().Set("Retry-After", "3")
				}
				writeJSON(w, tt.status, map[string]any{
					"message": "refused for jane.doe+x@example.com", "code": "E42",
					"emails": []string{"jane.doe+x@example.com"},
				})
			}))
			start := time.Now()
			_, err := c.GetUser(ctxT(t), uid1)
			if time.Since(start) > time.Second {
				t.Errorf("the call waited %v, want no retry (MaxRetries < 0)", time.Since(start))
			}
			var ae *cipherscale.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if ae.Status != tt.status || ae.Method != "GET" || ae.Route != cipherscale.RouteGetUser ||
				ae.Message != "refused for jane.doe+x@example.com" || ae.Code != "E42" ||
				len(ae.Emails) != 1 || ae.Emails[0] != "jane.doe+x@example.com" {
				t.Errorf("APIError = %+v", ae)
			}
			if tt.status == 429 || tt.status == 503 {
				if ae.RetryAfter != 3*time.Second || cipherscale.RetryAfterOf(err) != 3*time.Second {
					t.Errorf("RetryAfter = %v, want 3s", ae.RetryAfter)
				}
			}
			if tt.is != nil && !tt.is(err) {
				t.Errorf("predicate false for %d", tt.status)
			}
			if got := cipherscale.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			msg := err.Error()
			if strings.Contains(msg, "@") || strings.Contains(msg, testKey) || strings.Contains(msg, "u-1") {
				t.Errorf("error %q shows an email, the key or the id", msg)
			}
			if !strings.Contains(msg, "GET /tenants/users/{id}") || strings.Contains(msg, "GET GET") ||
				!strings.Contains(msg, strconv.Itoa(tt.status)) || !strings.Contains(msg, "<email>") {
				t.Errorf("error %q does not name the call and status", msg)
			}
		})
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		status            int
		wantMsg           string
		wantInError       string
	}{
		{"nest style", "application/json", `{"statusCode":400,"message":["email must be an email","groups must be an array"],"error":"Bad Request"}`,
			400, "email must be an email; groups must be an array", "email must be an email"},
		{"error field only", "application/json", `{"error":"Forbidden"}`, 403, "Forbidden", "Forbidden"},
		{"numeric code", "application/json", `{"message":"nope","code":1234}`, 400, "nope", "code 1234"},
		{"plain text", "text/plain", "upstream\n exploded\x00 badly\n", 502, "upstream exploded badly", "upstream exploded badly"},
		{"html", "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>", 502, "", "Bad Gateway"},
		{"empty", "", "", 503, "", "Service Unavailable"},
		{"bad json", "application/json", `{"message": `, 500, `{"message":`, "500"},
		{"long text", "text/plain", strings.Repeat("blah ", 400), 500, "", "..."},
		{"redirect", "text/plain", "", 302, "", "302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				if tt.status == 302 {
					w.Header().Set("Location", "http://example.invalid/steal")
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			_, err := c.GetUser(ctxT(t), uid1)
			var ae *cipherscale.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.Status != tt.status {
				t.Errorf("Status = %d, want %d", ae.Status, tt.status)
			}
			if tt.wantMsg != "" && ae.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", ae.Message, tt.wantMsg)
			}
			if tt.name == "html" && ae.Message != "" {
				t.Errorf("Message = %q, want none for an HTML page", ae.Message)
			}
			if len(ae.Message) > 700 {
				t.Errorf("Message is %d bytes long", len(ae.Message))
			}
			if !strings.Contains(err.Error(), tt.wantInError) {
				t.Errorf("Error() = %q, want it to contain %q", err.Error(), tt.wantInError)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	var header atomic.Value
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := header.Load().(string); h != "" {
			w.Header().Set("Retry-After", h)
		}
		writeJSON(w, 429, map[string]string{"message": "slow down"})
	}), func(c *cipherscale.Config) { c.RetryBudget = time.Minute })
	ctx := ctxT(t)

	// Absent: 1s. The call is not retried (MaxRetries < 0) and says when to come back.
	header.Store("")
	_, err := c.GetUser(ctx, uid1)
	if got := cipherscale.RetryAfterOf(err); got != time.Second {
		t.Errorf("RetryAfter without a header = %v, want 1s", got)
	}
	time.Sleep(1100 * time.Millisecond) // the shared pause
	header.Store(time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat))
	_, err = c.GetUser(ctx, uid1)
	if got := cipherscale.RetryAfterOf(err); got < time.Second || got > 3*time.Second {
		t.Errorf("RetryAfter for an HTTP-date 3s ahead = %v", got)
	}
}

func TestRequestsOfEveryEndpoint(t *testing.T) {
	type seen struct {
		method, path, query, body, ctype, accept, key, ua string
	}
	var mu sync.Mutex
	var last seen
	var status int
	var reply any
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b), r.Header.Get("Content-Type"),
			r.Header.Get("Accept"), r.Header.Get("apikey"), r.Header.Get("User-Agent")}
		st, rep := status, reply
		mu.Unlock()
		if rep == nil {
			w.WriteHeader(st)
			return
		}
		writeJSON(w, st, rep)
	}), func(c *cipherscale.Config) { c.UserAgent = "test-agent/1" })
	ctx := ctxT(t)
	user := userJSON(uid2, "a@x.com", "active")
	first, last2 := "Jane", ""

	tests := []struct {
		name          string
		status        int
		reply         any
		call          func() error
		method, path  string
		query, body   string
		wantBodyCType bool
	}{
		{"list page", 200, map[string]any{"data": []any{user}, "total": 1}, func() error {
			_, err := c.ListUsersPage(ctx, 25, 50, "email", "-createdAt")
			return err
		}, "GET", "/qa/tenants/users", "limit=25&offset=50&sort=email&sort=-createdAt", "", false},
		{"get", 200, user, func() error { _, err := c.GetUser(ctx, uid2); return err },
			"GET", "/qa/tenants/users/" + uid2, "", "", false},
		{"update", 200, user, func() error {
			_, err := c.UpdateProfile(ctx, uid2, cipherscale.ProfileUpdate{FirstName: &first, LastName: &last2})
			return err
		}, "PUT", "/qa/tenants/users/" + uid2, "", `{"firstName":"Jane","lastName":""}`, true},
		{"delete 204", 204, nil, func() error { return c.DeleteUser(ctx, uid2) },
			"DELETE", "/qa/tenants/users/" + uid2, "", "", false},
		{"delete 200", 200, map[string]any{}, func() error { return c.DeleteUser(ctx, uid2) },
			"DELETE", "/qa/tenants/users/" + uid2, "", "", false},
		{"delete gone", 404, map[string]any{"message": "no such user"}, func() error { return c.DeleteUser(ctx, uid1) },
			"DELETE", "/qa/tenants/users/" + uid1, "", "", false},
		{"deactivate", 200, user, func() error { _, err := c.DeactivateUser(ctx, uid1); return err },
			"PATCH", "/qa/tenants/users/" + uid1 + "/deactivate", "", "", false},
		{"reactivate", 201, user, func() error { _, err := c.ReactivateUser(ctx, uid1); return err },
			"POST", "/qa/tenants/users/" + uid1 + "/reactivate", "", "", false},
		{"invite 200", 200, nil, func() error { return c.ResendInvitation(ctx, uid1) },
			"POST", "/qa/tenants/users/" + uid1 + "/invite", "", "", false},
		{"invite 204", 204, nil, func() error { return c.ResendInvitation(ctx, uid1) },
			"POST", "/qa/tenants/users/" + uid1 + "/invite", "", "", false},
		{"roles all", 200, []any{}, func() error { _, err := c.UserRoles(ctx, uid1, cipherscale.AllRoles); return err },
			"GET", "/qa/tenants/users/" + uid1 + "/roles", "", "", false},
		{"roles direct", 200, []any{}, func() error { _, err := c.UserRoles(ctx, uid1, cipherscale.DirectRolesOnly); return err },
			"GET", "/qa/tenants/users/" + uid1 + "/roles", "rolesOnly=true", "", false},
		{"roles groups", 200, []any{}, func() error { _, err := c.UserRoles(ctx, uid1, cipherscale.GroupRolesOnly); return err },
			"GET", "/qa/tenants/users/" + uid1 + "/roles", "groupsOnly=true", "", false},
		{"patch roles", 200, nil, func() error {
			return c.PatchRoles(ctx, uid1, cipherscale.RolesPatch{AddedRoles: []string{rid1}})
		}, "PATCH", "/qa/tenants/users/" + uid1 + "/roles", "", `{"addedRoles":["` + rid1 + `"],"removedRoles":[]}`, true},
		{"add groups", 201, nil, func() error { return c.AddToGroups(ctx, uid1, []string{gid1, gid2}) },
			"POST", "/qa/tenants/users/" + uid1 + "/groups", "", `{"groups":["` + gid1 + `","` + gid2 + `"]}`, true},
		{"remove group", 204, nil, func() error { return c.RemoveFromGroup(ctx, uid1, gid1) },
			"DELETE", "/qa/tenants/users/" + uid1 + "/groups/" + gid1, "", "", false},
		{"create one", 201, user, func() error {
			_, err := c.CreateUsers(ctx, []cipherscale.NewUser{{Email: "a@x.com"}})
			return err
		}, "POST", "/qa/tenants/users", "", `[{"email":"a@x.com","groups":[]}]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			status, reply = tt.status, tt.reply
			mu.Unlock()
			if err := tt.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			mu.Lock()
			got := last
			mu.Unlock()
			if got.method != tt.method || got.path != tt.path || got.query != tt.query {
				t.Errorf("request %s %s?%s, want %s %s?%s", got.method, got.path, got.query, tt.method, tt.path, tt.query)
			}
			if strings.TrimSpace(got.body) != tt.body {
				t.Errorf("body %q, want %q", got.body, tt.body)
			}
			if tt.wantBodyCType != (got.ctype == "application/json") {
				t.Errorf("Content-Type %q with a body: %v", got.ctype, tt.wantBodyCType)
			}
			if got.accept != "application/json" || got.key != testKey || got.ua != "test-agent/1" {
				t.Errorf("headers: Accept %q, apikey %q, User-Agent %q", got.accept, got.key, got.ua)
			}
		})
	}

	for _, bad := range []func() error{
		func() error { _, err := c.GetUser(ctx, ""); return err },
		func() error { return c.DeleteUser(ctx, "..") },
		func() error { return c.RemoveFromGroup(ctx, uid1, "") },
		func() error { _, err := c.UserRoles(ctx, uid1, cipherscale.RoleFilter(9)); return err },
		func() error { _, err := c.ListUsersPage(ctx, -1, 0); return err },
	} {
		if err := bad(); err == nil {
			t.Error("an invalid argument was accepted")
		}
	}
}

func TestUserRolesShapes(t *testing.T) {
	role := map[string]any{"id": rid1, "name": "Admins", "type": "ADMIN", "deleteable": false}
	var body atomic.Value
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body.Load().(string))
	}))
	one, _ := json.Marshal(role)
	list, _ := json.Marshal([]any{role, map[string]any{"id": rid2, "name": "Billing", "type": "BILLING"}})
	for _, tt := range []struct {
		body string
		want int
	}{{string(one), 1}, {string(list), 2}, {"null", 0}, {"[]", 0}} {
		body.Store(tt.body)
		roles, err := c.UserRoles(ctxT(t), uid1, cipherscale.AllRoles)
		if err != nil || len(roles) != tt.want {
			t.Errorf("UserRoles(%s) = %d roles, %v; want %d", tt.body, len(roles), err, tt.want)
			continue
		}
		if tt.want > 0 && (roles[0].ID != rid1 || roles[0].Type != cipherscale.RoleTypeAdmin) {
			t.Errorf("role = %+v", roles[0])
		}
	}
	body.Store(`{"id": 5}`)
	if _, err := c.UserRoles(ctxT(t), uid1, cipherscale.AllRoles); !isDecode(err) {
		t.Errorf("malformed roles: err = %v, want *DecodeError", err)
	}
}

func isDecode(err error) bool {
	var de *cipherscale.DecodeError
	return errors.As(err, &de)
}

func TestMalformedResponses(t *testing.T) {
	var body atomic.Value
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body.Load().(string))
	}))
	ctx := ctxT(t)
	for _, b := range []string{
		``,
		`{bad`,
		`[]`,
		`{"status":"active","isOwner":false}`,
		`{"id":"123e4567-e89b-12d3-a456-426614174001","isOwner":false}`,
		`{"id":"123e4567-e89b-12d3-a456-426614174001","status":"  "}`,
		`{"id":"123e4567-e89b-12d3-a456-426614174001","status":"active","createdAt":"yesterday, for joe@example.com"}`,
		`{"id":"123e4567-e89b-12d3-a456-426614174001","status":"active","roles":"admin"}`,
	} {
		body.Store(b)
		u, err := c.GetUser(ctx, uid1)
		if !isDecode(err) || u != nil {
			t.Errorf("body %q: user %v, err %v; want *DecodeError", b, u, err)
			continue
		}
		if cipherscale.IsRetryable(err) || strings.Contains(err.Error(), "@") ||
			!strings.Contains(err.Error(), cipherscale.RouteGetUser) {
			t.Errorf("DecodeError %q", err)
		}
	}
	// An unknown status is refused, naming it; a known one in another case is taken.
	u := userJSON(uid1, "a@x.com", "Suspended")
	b, _ := json.Marshal(u)
	body.Store(string(b))
	if got, err := c.GetUser(ctx, uid1); !isDecode(err) || !strings.Contains(err.Error(), `"Suspended"`) {
		t.Errorf("unknown status: %+v, %v; want a *DecodeError naming it", got, err)
	}
	b, _ = json.Marshal(userJSON(uid1, "a@x.com", "Active"))
	body.Store(string(b))
	if got, err := c.GetUser(ctx, uid1); err != nil || got.Status.Normalized() != cipherscale.StatusActive {
		t.Errorf("status Active: %+v, %v", got, err)
	}
	// A page with a malformed user.
	body.Store(`{"data":[{"id":"","status":"active"}],"total":1}`)
	if _, err := c.ListUsers(ctx); !isDecode(err) {
		t.Errorf("ListUsers with a user without id: %v, want *DecodeError", err)
	}
}

// pager serves total users, pageSize at most per page (whatever limit was asked), and can lie.
type pager struct {
	total, pageSize int
	alwaysNext      bool // hasNext is always true
	emptyPages      bool // pages carry no data
	ignoreOffset    bool // every page is the first
	requests        atomic.Int32
	mu              sync.Mutex
	offsets         []int
	limits          []string
}

func (p *pager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	p.mu.Lock()
	p.offsets = append(p.offsets, off)
	if p.ignoreOffset {
		off = 0
	}
	p.limits = append(p.limits, r.URL.Query().Get("limit"))
	p.mu.Unlock()
	data := []any{}
	if !p.emptyPages {
		for i := off; i < off+p.pageSize && (i < p.total || p.alwaysNext); i++ {
			data = append(data, userJSON(testID(i), fmt.Sprintf("user%d@x.com", i), "active"))
		}
	}
	writeJSON(w, 200, map[string]any{
		"data": data, "total": p.total, "page": off / p.pageSize, "limit": p.pageSize,
		"hasNext": p.alwaysNext || off+len(data) < p.total, "hasPrevious": off > 0,
	})
}

func TestListUsersPagination(t *testing.T) {
	ctx := ctxT(t)
	t.Run("smaller pages than asked", func(t *testing.T) {
		p := &pager{total: 250, pageSize: 30}
		c, _ := newClient(t, p)
		users, err := c.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 250 || users[0].ID != testID(0) || users[249].ID != testID(249) {
			t.Fatalf("got %d users", len(users))
		}
		// Each page after the first starts at the last user of the one before: 29 new users a page.
		if n := p.requests.Load(); n != 9 {
			t.Errorf("%d requests, want 9", n)
		}
		if p.limits[0] != "100" || p.offsets[1] != 29 || p.offsets[8] != 232 {
			t.Errorf("limits %v offsets %v", p.limits, p.offsets)
		}
	})
	t.Run("exact pages", func(t *testing.T) {
		p := &pager{total: 199, pageSize: 100}
		c, _ := newClient(t, p)
		users, err := c.ListUsers(ctx)
		if err != nil || len(users) != 199 || p.requests.Load() != 2 {
			t.Fatalf("%d users, %d requests, %v", len(users), p.requests.Load(), err)
		}
	})
	t.Run("empty tenant", func(t *testing.T) {
		p := &pager{total: 0, pageSize: 100}
		c, _ := newClient(t, p)
		users, err := c.ListUsers(ctx)
		if err != nil || len(users) != 0 {
			t.Fatalf("%d users, %v", len(users), err)
		}
	})
	t.Run("hasNext never ends", func(t *testing.T) {
		p := &pager{total: 250, pageSize: 100, alwaysNext: true}
		c, _ := newClient(t, p, func(c *cipherscale.Config) { c.MaxListUsers = 1000 })
		_, err := c.ListUsers(ctx)
		if !isDecode(err) || !errors.Is(err, cipherscale.ErrListTooLarge) || !strings.Contains(err.Error(), "more than 1000 users") {
			t.Fatalf("err = %v, want a *DecodeError wrapping ErrListTooLarge", err)
		}
		// 1000 users in pages of 99 new ones, then the refused page.
		if n := p.requests.Load(); n != 11 {
			t.Errorf("%d requests, want 11", n)
		}
	})
	t.Run("offset ignored", func(t *testing.T) {
		p := &pager{total: 250, pageSize: 100, alwaysNext: true, ignoreOffset: true}
		c, _ := newClient(t, p)
		_, err := c.ListUsers(ctx)
		if !isDecode(err) || !strings.Contains(err.Error(), "the offset is not followed") || p.requests.Load() != 2 {
			t.Fatalf("err = %v after %d requests, want a *DecodeError after 2", err, p.requests.Load())
		}
	})
	t.Run("empty page with hasNext", func(t *testing.T) {
		p := &pager{total: 250, pageSize: 100, alwaysNext: true, emptyPages: true}
		c, _ := newClient(t, p)
		_, err := c.ListUsers(ctx)
		if !isDecode(err) || p.requests.Load() != 1 {
			t.Fatalf("err = %v after %d requests, want a *DecodeError after 1", err, p.requests.Load())
		}
	})
}

func TestSecretsNeverShown(t *testing.T) {
	const dropID, garbageID = "123e4567-e89b-12d3-a456-4266141740d0", "123e4567-e89b-12d3-a456-4266141740e0"
	c, srv := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/"+dropID):
			dropConnection(w)
		case strings.HasSuffix(r.URL.Path, "/"+garbageID):
			_, _ = io.WriteString(w, `{"id":"`+r.Header.Get("apikey")+`","status":"active"}`)
		default:
			writeJSON(w, 401, map[string]string{"message": "key " + r.Header.Get("apikey") + " is not valid for owner@corp.example", "code": r.Header.Get("apikey")})
		}
	}))
	ctx := ctxT(t)
	var errs []error
	_, err := c.GetUser(ctx, uid1)
	if !cipherscale.IsUnauthorized(err) {
		t.Errorf("err = %v, want 401", err)
	}
	var ae *cipherscale.APIError
	if errors.As(err, &ae) && (strings.Contains(ae.Message, testKey) || strings.Contains(ae.Code, testKey)) {
		t.Errorf("APIError fields hold the key: %+v", ae)
	}
	errs = append(errs, err)
	_, err = c.GetUser(ctx, dropID)
	if !cipherscale.IsTransport(err) {
		t.Errorf("err = %v, want *TransportError", err)
	}
	errs = append(errs, err)
	_, err = c.GetUser(ctx, garbageID)
	errs = append(errs, err)
	_, err = cipherscale.New(cipherscale.Config{BaseURL: "ftp://" + testKey, Key: cipherscale.StaticKey(testKey)})
	errs = append(errs, err)
	_, err = cipherscale.New(cipherscale.Config{BaseURL: "https://user:" + testKey + "@host/", Key: cipherscale.StaticKey(testKey)})
	errs = append(errs, err)
	_, err = cipherscale.New(cipherscale.Config{BaseURL: "http://h\x7f/" + testKey, Key: cipherscale.StaticKey(testKey)})
	errs = append(errs, err)
	_, err = cipherscale.New(cipherscale.Config{Key: cipherscale.StaticKey(testKey), QPS: -1})
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Error("want an error")
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, testKey) || strings.Contains(msg, "@") || strings.Contains(msg, srv.URL) ||
			strings.Contains(msg, dropID) {
			t.Errorf("error %q shows the key, an email or the URL", msg)
		}
	}
	k := cipherscale.StaticKey(testKey)
	cfg := cipherscale.Config{Key: k}
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%s %q %x %X %d %v %+v %#v", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), fmt.Sprintf("%v %+v", c, c), c.String(),
	} {
		if strings.Contains(s, testKey) || strings.Contains(s, fmt.Sprintf("%x", testKey)) {
			t.Errorf("formatted output %q shows the key", s)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("Configured", "key", k, "config", cfg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("Configured", "key", k, "config", cfg)
	js, err := json.Marshal(map[string]any{"key": k, "config": cfg})
	if err != nil || strings.Contains(string(js), testKey) || strings.Contains(buf.String(), testKey) {
		t.Errorf("encoded output shows the key: %s %s (%v)", js, buf.String(), err)
	}
	if got, err := k.Key(); got != testKey || err != nil {
		t.Errorf("Key() = %q, %v", got, err)
	}
	if _, err := cipherscale.StaticKey("  ").Key(); err == nil {
		t.Error("an empty static key was accepted")
	}
}

func TestErrorRedaction(t *testing.T) {
	ae := &cipherscale.APIError{Status: 409, Method: "POST", Route: cipherscale.RouteCreateUsers,
		Message: "emails exist: Jane.Doe+ops@Example.COM, o'brien@mail.example.org.", Code: "dup:x@y.z",
		Emails: []string{"Jane.Doe+ops@Example.COM", "o'brien@mail.example.org"}}
	msg := ae.Error()
	if strings.Contains(msg, "@") || !strings.Contains(msg, "emails exist: <email>, <email>.") ||
		!strings.Contains(msg, "2 emails refused") || !strings.HasPrefix(msg, "cipherscale API POST /tenants/users: 409") {
		t.Errorf("APIError.Error() = %q", msg)
	}
	if got := (&cipherscale.APIError{Status: 404}).Error(); got != "cipherscale API: 404: Not Found" {
		t.Errorf("bare APIError = %q", got)
	}
	if got := (&cipherscale.APIError{Status: 429, Method: "GET", Route: "/x", RetryAfter: 2 * time.Second}).Error(); !strings.Contains(got, "GET /x: 429") || !strings.Contains(got, "retry after 2s") {
		t.Errorf("APIError with RetryAfter = %q", got)
	}
	de := &cipherscale.DecodeError{Method: "GET", Route: cipherscale.RouteListUsers, Err: errors.New(`bad value "x@y.example"`)}
	if msg := de.Error(); strings.Contains(msg, "@") || !strings.Contains(msg, "GET /tenants/users: malformed response") {
		t.Errorf("DecodeError.Error() = %q", msg)
	}
	inner := &url.Error{Op: "Post", URL: "https://api.example/qa/tenants/users/6f1c-id", Err: errors.New("EOF")}
	te := &cipherscale.TransportError{Method: "POST", Route: cipherscale.RouteResendInvitation, Err: inner}
	if msg := te.Error(); strings.Contains(msg, "6f1c-id") || strings.Contains(msg, "https://") ||
		!strings.Contains(msg, "POST /tenants/users/{id}/invite") || !strings.Contains(msg, "EOF") {
		t.Errorf("TransportError.Error() = %q", msg)
	}
	if !errors.Is(te, inner.Err) {
		t.Error("TransportError does not unwrap")
	}
	if got := cipherscale.RedactEmails("no emails here, only @mentions and a@"); got != "no emails here, only @mentions and a@" {
		t.Errorf("RedactEmails changed %q", got)
	}
}

func TestValidateBaseURL(t *testing.T) {
	tests := []struct {
		raw      string
		insecure bool
		want     string // "" when invalid
	}{
		{cipherscale.DefaultBaseURL, false, "https://public-api.cipherscale.com/qa"},
		{"https://api.example.com/qa/", false, "https://api.example.com/qa"},
		{"HTTPS://api.example.com", false, "https://api.example.com"},
		{"http://127.0.0.1:8089", false, "http://127.0.0.1:8089"},
		{"http://127.9.8.7/x", false, "http://127.9.8.7/x"},
		{"http://[::1]:8089/", false, "http://[::1]:8089"},
		{"http://localhost:8089", false, "http://localhost:8089"},
		{"http://LocalHost.", false, "http://LocalHost."},
		{"http://sim.default.svc:8089", false, ""},
		{"http://sim.default.svc:8089", true, "http://sim.default.svc:8089"},
		{"http://10.0.0.1", false, ""},
		{"http://localhost.evil.com", false, ""},
		{"http://127.0.0.1.nip.io", false, ""},
		{"", false, ""},
		{"public-api.cipherscale.com/qa", false, ""},
		{"/qa", false, ""},
		{"ftp://example.com", false, ""},
		{"https://", false, ""},
		{"https://user:pw@example.com", false, ""},
		{"https://example.com/qa?x=1", false, ""},
		{"https://example.com/qa#frag", false, ""},
		{"https://exa mple.com", false, ""},
		{"mailto:a@example.com", false, ""},
	}
	for _, tt := range tests {
		u, err := cipherscale.ValidateBaseURL(tt.raw, tt.insecure)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ValidateBaseURL(%q, %v) = %v, want an error", tt.raw, tt.insecure, u)
		case tt.want != "" && err != nil:
			t.Errorf("ValidateBaseURL(%q, %v): %v", tt.raw, tt.insecure, err)
		case tt.want != "" && u.String() != tt.want:
			t.Errorf("ValidateBaseURL(%q, %v) = %v, want %s", tt.raw, tt.insecure, u, tt.want)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	key := cipherscale.StaticKey("k")
	for name, cfg := range map[string]cipherscale.Config{
		"no key":          {},
		"negative QPS":    {Key: key, QPS: -1},
		"NaN QPS":         {Key: key, QPS: math.NaN()},
		"negative burst":  {Key: key, Burst: -1},
		"negative budget": {Key: key, RetryBudget: -time.Second},
		"insecure http":   {Key: key, BaseURL: "http://api.example.com"},
		"bad agent":       {Key: key, UserAgent: "a\nb"},
	} {
		if _, err := cipherscale.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	c, err := cipherscale.New(cipherscale.Config{Key: key})
	if err != nil || c.BaseURL() != cipherscale.DefaultBaseURL {
		t.Fatalf("New with defaults: %v, %v", c, err)
	}
	c, err = cipherscale.New(cipherscale.Config{Key: key, BaseURL: "http://api.example.com/v1/", AllowInsecureHTTP: true})
	if err != nil || c.BaseURL() != "http://api.example.com/v1" {
		t.Fatalf("New with insecure http: %v, %v", c, err)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var stolen atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
	}))
	defer other.Close()
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	_, err := c.GetUser(ctxT(t), uid1)
	if cipherscale.StatusOf(err) != http.StatusTemporaryRedirect || stolen.Load() != 0 {
		t.Errorf("err = %v, other server hit %d times", err, stolen.Load())
	}
}

// flaky answers with the statuses in order (0: drop the connection), then with reply.
type flaky struct {
	mu       sync.Mutex
	script   []int
	reply    any
	requests map[string]int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.requests == nil {
		f.requests = map[string]int{}
	}
	f.requests[r.Method+" "+r.URL.Path]++
	st := -1
	if len(f.script) > 0 {
		st, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	switch st {
	case -1:
		writeJSON(w, 200, f.reply)
	case 0:
		dropConnection(w)
	default:
		writeJSON(w, st, map[string]string{"message": "scripted"})
	}
}

func (f *flaky) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[route]
}

type recorder struct {
	mu        sync.Mutex
	requests  []string
	waits     int
	throttled []time.Duration
}

func (r *recorder) ObserveRequest(route string, status int, d time.Duration) {
	r.mu.Lock()
	r.requests = append(r.requests, fmt.Sprintf("%s %d", route, status))
	r.mu.Unlock()
}
func (r *recorder) ObserveRateLimitWait(time.Duration) { r.mu.Lock(); r.waits++; r.mu.Unlock() }
func (r *recorder) ObserveThrottled(_ string, ra time.Duration) {
	r.mu.Lock()
	r.throttled = append(r.throttled, ra)
	r.mu.Unlock()
}

func TestRetries(t *testing.T) {
	ctx := ctxT(t)
	user := userJSON(uid1, "a@x.com", "active")

	t.Run("5xx and lost answers retried for idempotent calls", func(t *testing.T) {
		f := &flaky{script: []int{503, 0, 502}, reply: user}
		rec := &recorder{}
		c, _ := newClient(t, f, retries(4), func(c *cipherscale.Config) { c.Observer = rec })
		if _, err := c.GetUser(ctx, uid1); err != nil {
			t.Fatal(err)
		}
		if n := f.count("GET /qa/tenants/users/" + uid1); n != 4 {
			t.Errorf("%d requests, want 4", n)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		// net/http itself may resend a GET whose reused connection was closed, so the dropped
		// attempt is not always seen by the client.
		want := []string{"GET /tenants/users/{id} 503", "GET /tenants/users/{id} 0", "GET /tenants/users/{id} 502", "GET /tenants/users/{id} 200"}
		want2 := []string{want[0], want[2], want[3]}
		got := fmt.Sprint(rec.requests)
		if (got != fmt.Sprint(want) || rec.waits != 4) && (got != fmt.Sprint(want2) || rec.waits != 3) {
			t.Errorf("observed %v and %d waits, want %v", rec.requests, rec.waits, want)
		}
	})
	t.Run("every idempotent call", func(t *testing.T) {
		for name, call := range map[string]func(*cipherscale.Client) error{
			"update": func(c *cipherscale.Client) error {
				_, err := c.UpdateProfile(ctx, uid1, cipherscale.ProfileUpdate{})
				return err
			},
			"delete":     func(c *cipherscale.Client) error { return c.DeleteUser(ctx, uid1) },
			"deactivate": func(c *cipherscale.Client) error { _, err := c.DeactivateUser(ctx, uid1); return err },
			"reactivate": func(c *cipherscale.Client) error { _, err := c.ReactivateUser(ctx, uid1); return err },
			"roles":      func(c *cipherscale.Client) error { _, err := c.UserRoles(ctx, uid1, cipherscale.AllRoles); return err },
			"patchroles": func(c *cipherscale.Client) error { return c.PatchRoles(ctx, uid1, cipherscale.RolesPatch{}) },
			"addgroups":  func(c *cipherscale.Client) error { return c.AddToGroups(ctx, uid1, []string{gid1}) },
			"rmgroup":    func(c *cipherscale.Client) error { return c.RemoveFromGroup(ctx, uid1, gid1) },
			"listpage": func(c *cipherscale.Client) error {
				_, err := c.ListUsersPage(ctx, 10, 0)
				return err
			},
		} {
			reply := any(user)
			switch name {
			case "roles":
				reply = []any{}
			case "listpage":
				reply = map[string]any{"data": []any{}, "total": 0}
			}
			f := &flaky{script: []int{500}, reply: reply}
			c, _ := newClient(t, f, retries(2))
			if err := call(c); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("invite not retried", func(t *testing.T) {
		for _, st := range []int{500, 0} {
			f := &flaky{script: []int{st}}
			c, _ := newClient(t, f, retries(4))
			err := c.ResendInvitation(ctx, uid1)
			if err == nil || f.count("POST /qa/tenants/users/"+uid1+"/invite") != 1 {
				t.Errorf("status %d: err %v after %d requests, want an error after 1", st, err, f.count("POST /qa/tenants/users/"+uid1+"/invite"))
			}
		}
	})
	t.Run("invite retried after a 429", func(t *testing.T) {
		f := &flaky{script: []int{429}}
		c, _ := newClient(t, f, retries(2))
		if err := c.ResendInvitation(ctx, uid1); err != nil || f.count("POST /qa/tenants/users/"+uid1+"/invite") != 2 {
			t.Errorf("err %v after %d requests", err, f.count("POST /qa/tenants/users/"+uid1+"/invite"))
		}
	})
	t.Run("bounded by MaxRetries", func(t *testing.T) {
		f := &flaky{script: []int{500, 500, 500, 500, 500, 500}}
		c, _ := newClient(t, f, retries(2))
		_, err := c.GetUser(ctx, uid1)
		if cipherscale.StatusOf(err) != 500 || f.count("GET /qa/tenants/users/"+uid1) != 3 {
			t.Errorf("err %v after %d requests, want 500 after 3", err, f.count("GET /qa/tenants/users/"+uid1))
		}
	})
	t.Run("bounded by RetryBudget", func(t *testing.T) {
		f := &flaky{script: []int{500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500}}
		c, _ := newClient(t, f, retries(10), func(c *cipherscale.Config) { c.RetryBudget = 400 * time.Millisecond })
		start := time.Now()
		_, err := c.GetUser(ctx, uid1)
		if cipherscale.StatusOf(err) != 500 || time.Since(start) > 1500*time.Millisecond {
			t.Errorf("err %v after %v", err, time.Since(start))
		}
	})
	t.Run("4xx not retried", func(t *testing.T) {
		f := &flaky{script: []int{409, 409}}
		c, _ := newClient(t, f, retries(4))
		if _, err := c.GetUser(ctx, uid1); !cipherscale.IsConflict(err) || f.count("GET /qa/tenants/users/"+uid1) != 1 {
			t.Errorf("err %v after %d requests", err, f.count("GET /qa/tenants/users/"+uid1))
		}
	})
}

// throttler answers 429 with Retry-After to the requests listed, 200 to the others.
type throttler struct {
	retryAfter string
	throttle   map[int]bool // by request number, from 1
	n          atomic.Int32
	mu         sync.Mutex
	times      []time.Time
	served429  chan struct{}
	reply      any
}

func (th *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(th.n.Add(1))
	th.mu.Lock()
	th.times = append(th.times, time.Now())
	th.mu.Unlock()
	if th.throttle[n] {
		if th.retryAfter != "" {
			w.Header().Set("Retry-After", th.retryAfter)
		}
		writeJSON(w, 429, map[string]string{"message": "too many requests"})
		if th.served429 != nil {
			select {
			case th.served429 <- struct{}{}:
			default:
			}
		}
		return
	}
	writeJSON(w, 200, th.reply)
}

func TestThrottling(t *testing.T) {
	ctx := ctxT(t)
	user := userJSON(uid1, "a@x.com", "active")

	t.Run("429 retried after Retry-After", func(t *testing.T) {
		th := &throttler{retryAfter: "0.3", throttle: map[int]bool{1: true}, reply: user}
		rec := &recorder{}
		c, _ := newClient(t, th, retries(2), func(c *cipherscale.Config) { c.Observer = rec })
		start := time.Now()
		if _, err := c.GetUser(ctx, uid1); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 280*time.Millisecond || d > 2*time.Second {
			t.Errorf("took %v, want about 0.3s", d)
		}
		rec.mu.Lock()
		if len(rec.throttled) != 1 || rec.throttled[0] != 300*time.Millisecond {
			t.Errorf("throttled %v", rec.throttled)
		}
		rec.mu.Unlock()
	})
	t.Run("429 pauses every caller", func(t *testing.T) {
		th := &throttler{retryAfter: "0.5", throttle: map[int]bool{1: true}, reply: user, served429: make(chan struct{}, 1)}
		c, _ := newClient(t, th, retries(2))
		errc := make(chan error, 1)
		go func() { _, err := c.GetUser(ctx, uid1); errc <- err }()
		<-th.served429
		time.Sleep(50 * time.Millisecond) // let the client read the 429
		if _, err := c.GetUser(ctx, uid2); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		th.mu.Lock()
		defer th.mu.Unlock()
		if len(th.times) != 3 {
			t.Fatalf("%d requests, want 3", len(th.times))
		}
		for _, at := range th.times[1:] {
			if d := at.Sub(th.times[0]); d < 450*time.Millisecond {
				t.Errorf("a request came %v after the 429, want after the 0.5s pause", d)
			}
		}
	})
	t.Run("pause longer than the budget fails fast", func(t *testing.T) {
		th := &throttler{retryAfter: "20", throttle: map[int]bool{1: true}, reply: user}
		c, _ := newClient(t, th, retries(4), func(c *cipherscale.Config) { c.RetryBudget = time.Second })
		start := time.Now()
		_, err := c.GetUser(ctx, uid1)
		if !cipherscale.IsRateLimited(err) || cipherscale.RetryAfterOf(err) != 20*time.Second {
			t.Errorf("err = %v, want a 429 with RetryAfter 20s", err)
		}
		_, err = c.GetUser(ctx, uid2)
		if ra := cipherscale.RetryAfterOf(err); !cipherscale.IsRateLimited(err) || ra < 18*time.Second || ra > 20*time.Second {
			t.Errorf("second call: err = %v, want a 429 with the rest of the pause", err)
		}
		if time.Since(start) > 500*time.Millisecond || th.n.Load() != 1 {
			t.Errorf("took %v and %d requests, want fast and 1", time.Since(start), th.n.Load())
		}
	})
	t.Run("a ctx WithoutPauseWait neither retries a 429 nor waits out the pause", func(t *testing.T) {
		th := &throttler{retryAfter: "5", throttle: map[int]bool{1: true}, reply: user}
		c, _ := newClient(t, th, retries(4))
		nowait := cipherscale.WithoutPauseWait(ctx)
		start := time.Now()
		_, err := c.GetUser(nowait, uid1)
		if !cipherscale.IsRateLimited(err) || cipherscale.RetryAfterOf(err) != 5*time.Second {
			t.Errorf("err = %v, want the 429 with RetryAfter 5s", err)
		}
		_, err = c.GetUser(nowait, uid2)
		if ra := cipherscale.RetryAfterOf(err); !cipherscale.IsRateLimited(err) || ra < 4*time.Second || ra > 5*time.Second {
			t.Errorf("second call: err = %v, want a 429 with the rest of the pause", err)
		}
		if time.Since(start) > time.Second || th.n.Load() != 1 {
			t.Errorf("took %v and %d requests, want fast and 1", time.Since(start), th.n.Load())
		}
	})
	t.Run("a 429 says how long the API has been answering 429, until it answers otherwise", func(t *testing.T) {
		th := &throttler{retryAfter: "1", throttle: map[int]bool{1: true, 2: true, 4: true}, reply: user}
		c, _ := newClient(t, th, retries(0))
		nowait := cipherscale.WithoutPauseWait(ctx)
		_, err := c.GetUser(nowait, uid1)
		if !cipherscale.IsRateLimited(err) || cipherscale.ThrottledForOf(err) != 0 {
			t.Fatalf("first 429: err = %v, throttled for %v, want a 429 at the start of the storm", err, cipherscale.ThrottledForOf(err))
		}
		_, err = c.GetUser(nowait, uid1) // refused during the pause, without a request
		if d := cipherscale.ThrottledForOf(err); !cipherscale.IsRateLimited(err) || d <= 0 || d > time.Second {
			t.Errorf("refused during the pause: err = %v, throttled for %v", err, d)
		}
		time.Sleep(1100 * time.Millisecond) // the client's pause, which Retry-After sets in seconds
		_, err = c.GetUser(nowait, uid1)
		if d := cipherscale.ThrottledForOf(err); !cipherscale.IsRateLimited(err) || d < time.Second {
			t.Errorf("second 429, after the pause: err = %v, throttled for %v, want at least 1s", err, d)
		}
		time.Sleep(1100 * time.Millisecond)
		if _, err := c.GetUser(nowait, uid1); err != nil {
			t.Fatalf("third request: %v", err)
		}
		_, err = c.GetUser(nowait, uid1)
		if !cipherscale.IsRateLimited(err) || cipherscale.ThrottledForOf(err) != 0 {
			t.Errorf("a 429 after an answer: err = %v, throttled for %v, want a new storm", err, cipherscale.ThrottledForOf(err))
		}
		if n := th.n.Load(); n != 4 {
			t.Errorf("%d requests, want 4", n)
		}
	})
	t.Run("waiting respects ctx", func(t *testing.T) {
		th := &throttler{retryAfter: "5", throttle: map[int]bool{1: true}, reply: user}
		c, _ := newClient(t, th)
		if _, err := c.GetUser(ctx, uid1); !cipherscale.IsRateLimited(err) {
			t.Fatalf("err = %v", err)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.GetUser(short, uid1)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Errorf("err = %v after %v, want the ctx's deadline", err, time.Since(start))
		}
	})
	t.Run("waiting for a token respects ctx", func(t *testing.T) {
		c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, user)
		}), func(c *cipherscale.Config) { c.QPS, c.Burst = 0.5, 1 })
		if _, err := c.GetUser(ctx, uid1); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := c.GetUser(short, uid1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the ctx's deadline", err)
		}
	})
	t.Run("rate limiter shared by all calls", func(t *testing.T) {
		var n atomic.Int32
		c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			writeJSON(w, 200, user)
		}), func(c *cipherscale.Config) { c.QPS, c.Burst = 50, 1 })
		start := time.Now()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 6 + g%2 {
					if _, err := c.GetUser(ctx, uid1); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		// 26 calls at 50/s with a burst of 1: 25 intervals of 20ms.
		if d := time.Since(start); d < 450*time.Millisecond || d > 3*time.Second {
			t.Errorf("26 calls took %v, want about 0.5s", d)
		}
	})
}

// fakeTenant serves list and create, with scripted create failures.
type fakeTenant struct {
	mu    sync.Mutex
	users []map[string]any
	posts [][]cipherscale.NewUser
	gets  int
	// post decides what the n-th create (from 1) does.
	post func(n int, items []cipherscale.NewUser) (apply bool, answer string)
}

// Answers of fakeTenant.post.
const (
	answerOK      = "ok"      // 201 with the users as an array
	answerSingle  = "single"  // 201 with one object
	answer500     = "500"     // 500
	answerDrop    = "drop"    // close the connection
	answerGarbage = "garbage" // 201 with a body that is not JSON
	answer409     = "409"     // 409 naming the items
	answer429     = "429"     // 429, Retry-After 0.1s
)

func (f *fakeTenant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/qa/tenants/users" {
		f.gets++
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		end := min(off+100, len(f.users))
		data := []any{}
		for _, u := range f.users[min(off, len(f.users)):end] {
			data = append(data, u)
		}
		writeJSON(w, 200, map[string]any{"data": data, "total": len(f.users), "hasNext": end < len(f.users)})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/qa/tenants/users" {
		w.WriteHeader(404)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var items []cipherscale.NewUser
	if len(b) == 0 || b[0] != '[' || json.Unmarshal(b, &items) != nil {
		writeJSON(w, 400, map[string]string{"message": "want an array"})
		return
	}
	f.posts = append(f.posts, items)
	apply, answer := true, answerOK
	if f.post != nil {
		apply, answer = f.post(len(f.posts), items)
	}
	var created []any
	if apply {
		for _, it := range items {
			u := userJSON(testID(len(f.users)), it.Email, "pending")
			f.users = append(f.users, u)
			created = append(created, u)
		}
	}
	switch answer {
	case answerOK:
		writeJSON(w, 201, created)
	case answerSingle:
		writeJSON(w, 201, created[0])
	case answer500:
		writeJSON(w, 500, map[string]string{"message": "internal"})
	case answerDrop:
		dropConnection(w)
	case answerGarbage:
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "<html>created</html>")
	case answer409:
		emails := []string{}
		for _, it := range items {
			emails = append(emails, it.Email)
		}
		writeJSON(w, 409, map[string]any{"message": "emails exist: " + strings.Join(emails, ", "), "emails": emails})
	case answer429:
		w.Header().Set("Retry-After", "0.1")
		writeJSON(w, 429, map[string]string{"message": "slow down"})
	}
}

func newUsers(n int, prefix string) []cipherscale.NewUser {
	out := make([]cipherscale.NewUser, n)
	for i := range out {
		out[i] = cipherscale.NewUser{Email: fmt.Sprintf("%s%03d@x.com", prefix, i)}
	}
	return out
}

func checkCreated(t *testing.T, got []cipherscale.User, want []cipherscale.NewUser) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d users, want %d", len(got), len(want))
	}
	for i := range want {
		if cipherscale.NormalizeEmail(got[i].Email) != cipherscale.NormalizeEmail(want[i].Email) || got[i].ID == "" {
			t.Fatalf("user %d = %s (%s), want %s", i, got[i].Email, got[i].ID, want[i].Email)
		}
	}
}

func TestCreateUsers(t *testing.T) {
	ctx := ctxT(t)

	t.Run("batches in request order", func(t *testing.T) {
		f := &fakeTenant{}
		c, _ := newClient(t, f)
		in := newUsers(250, "u")
		got, err := c.CreateUsers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, in)
		if len(f.posts) != 3 || len(f.posts[0]) != 100 || len(f.posts[1]) != 100 || len(f.posts[2]) != 50 || f.gets != 0 {
			t.Errorf("%d posts, %d gets", len(f.posts), f.gets)
		}
	})
	t.Run("single object answer", func(t *testing.T) {
		f := &fakeTenant{post: func(int, []cipherscale.NewUser) (bool, string) { return true, answerSingle }}
		c, _ := newClient(t, f)
		in := []cipherscale.NewUser{{Email: "Solo@X.com", Groups: []string{gid1}}}
		got, err := c.CreateUsers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, in)
		if len(f.posts[0][0].Groups) != 1 {
			t.Errorf("groups not sent: %+v", f.posts[0])
		}
	})
	t.Run("duplicates refused before any request", func(t *testing.T) {
		f := &fakeTenant{}
		c, _ := newClient(t, f)
		_, err := c.CreateUsers(ctx, []cipherscale.NewUser{{Email: "a@x.com"}, {Email: "b@x.com"}, {Email: " A@X.com"}})
		if err == nil || strings.Contains(err.Error(), "@") || len(f.posts) != 0 {
			t.Errorf("err %v, %d posts", err, len(f.posts))
		}
		if _, err := c.CreateUsers(ctx, []cipherscale.NewUser{{Email: " "}}); err == nil {
			t.Error("an empty email was accepted")
		}
		if got, err := c.CreateUsers(ctx, nil); got != nil || err != nil {
			t.Errorf("CreateUsers(nil) = %v, %v", got, err)
		}
	})
	t.Run("refused batch returns earlier batches", func(t *testing.T) {
		f := &fakeTenant{post: func(n int, _ []cipherscale.NewUser) (bool, string) {
			if n == 2 {
				return false, answer409
			}
			return true, answerOK
		}}
		c, _ := newClient(t, f, retries(4))
		in := newUsers(150, "r")
		got, err := c.CreateUsers(ctx, in)
		var ae *cipherscale.APIError
		if !errors.As(err, &ae) || ae.Status != 409 || len(ae.Emails) != 50 || ae.Emails[0] != "r100@x.com" {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "@") {
			t.Errorf("error shows emails: %q", err)
		}
		checkCreated(t, got, in[:100])
		if len(f.posts) != 2 || f.gets != 0 {
			t.Errorf("%d posts, %d gets: a refusal is not retried", len(f.posts), f.gets)
		}
	})
	t.Run("429 is retried", func(t *testing.T) {
		f := &fakeTenant{post: func(n int, _ []cipherscale.NewUser) (bool, string) {
			if n == 1 {
				return false, answer429
			}
			return true, answerOK
		}}
		c, _ := newClient(t, f, retries(2))
		in := newUsers(2, "t")
		got, err := c.CreateUsers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, in)
		if len(f.posts) != 2 || f.gets != 0 || len(f.users) != 2 {
			t.Errorf("%d posts, %d gets, %d users", len(f.posts), f.gets, len(f.users))
		}
	})
	for _, answer := range []string{answer500, answerDrop, answerGarbage} {
		t.Run("applied, answer "+answer, func(t *testing.T) {
			f := &fakeTenant{post: func(n int, _ []cipherscale.NewUser) (bool, string) {
				if n == 1 {
					return true, answer
				}
				return true, answerOK
			}}
			f.users = append(f.users, userJSON(uid2, "other@x.com", "active"))
			c, _ := newClient(t, f, retries(3))
			in := newUsers(3, "a")
			got, err := c.CreateUsers(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			checkCreated(t, got, in)
			if len(f.posts) != 1 || f.gets != 1 || len(f.users) != 4 {
				t.Errorf("%d posts, %d gets, %d users: want the list read and nothing sent again", len(f.posts), f.gets, len(f.users))
			}
		})
	}
	t.Run("not applied, answer 500: sent again", func(t *testing.T) {
		f := &fakeTenant{post: func(n int, _ []cipherscale.NewUser) (bool, string) {
			if n == 1 {
				return false, answer500
			}
			return true, answerOK
		}}
		c, _ := newClient(t, f, retries(3))
		in := newUsers(3, "n")
		got, err := c.CreateUsers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, in)
		if len(f.posts) != 2 || f.gets != 1 || len(f.users) != 3 {
			t.Errorf("%d posts, %d gets, %d users", len(f.posts), f.gets, len(f.users))
		}
	})
	t.Run("partly applied: only the missing sent again", func(t *testing.T) {
		f := &fakeTenant{}
		f.post = func(n int, items []cipherscale.NewUser) (bool, string) {
			if n == 1 { // apply the first item only, then fail
				f.users = append(f.users, userJSON(uid1, strings.ToUpper(items[0].Email), "pending"))
				return false, answerDrop
			}
			return true, answerOK
		}
		c, _ := newClient(t, f, retries(3))
		in := newUsers(3, "p")
		got, err := c.CreateUsers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, in)
		if got[0].ID != uid1 || len(f.posts) != 2 || len(f.posts[1]) != 2 || f.posts[1][0].Email != "p001@x.com" {
			t.Errorf("posts %v", f.posts)
		}
	})
	t.Run("conflict on a resend: the late create is found", func(t *testing.T) {
		f := &fakeTenant{}
		f.post = func(n int, items []cipherscale.NewUser) (bool, string) {
			switch n {
			case 1: // not applied yet...
				return false, answer500
			case 2: // ...applied late: the resend conflicts
				for _, it := range items {
					f.users = append(f.users, userJSON(testID(1000+len(f.users)), it.Email, "pending"))
				}
				return false, answer409
			}
			return true, answerOK
		}
		c, _ := newClient(t, f, retries(3))
		in := newUsers(1, "l")
		got, err := c.CreateUsers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, in)
		if len(f.posts) != 2 || f.gets != 2 || len(f.users) != 1 {
			t.Errorf("%d posts, %d gets, %d users", len(f.posts), f.gets, len(f.users))
		}
	})
	t.Run("resends bounded", func(t *testing.T) {
		f := &fakeTenant{post: func(int, []cipherscale.NewUser) (bool, string) { return false, answer500 }}
		c, _ := newClient(t, f, retries(2))
		got, err := c.CreateUsers(ctx, newUsers(2, "b"))
		if cipherscale.StatusOf(err) != 500 || len(got) != 0 {
			t.Fatalf("got %d users, err %v", len(got), err)
		}
		if len(f.posts) != 3 || f.gets != 3 {
			t.Errorf("%d posts, %d gets, want 3 and 3", len(f.posts), f.gets)
		}
	})
	t.Run("unknown outcome without retries: one look at the list", func(t *testing.T) {
		f := &fakeTenant{post: func(int, []cipherscale.NewUser) (bool, string) { return false, answerDrop }}
		c, _ := newClient(t, f)
		_, err := c.CreateUsers(ctx, newUsers(1, "z"))
		if !cipherscale.IsTransport(err) || len(f.posts) != 1 || f.gets != 1 {
			t.Errorf("err %v, %d posts, %d gets", err, len(f.posts), f.gets)
		}
	})
}
