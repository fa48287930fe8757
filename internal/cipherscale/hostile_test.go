package cipherscale_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// The tests of this file play a broken or hostile API: every answer outside the contract is a
// *DecodeError that says what the service sent, and nothing of it reaches the caller.

// minimalUser is a user as small as the contract allows, for generated pages.
func minimalUser(id, status string) string {
	return `{"id":"` + id + `","status":"` + status + `","isOwner":false,"maxDevices":null,"roles":[],"groups":[],"devices":[]}`
}

// rawPage is a page of the given users (raw JSON), with total and hasNext.
func rawPage(users []string, total int, hasNext bool) string {
	return fmt.Sprintf(`{"data":[%s],"total":%d,"page":0,"limit":100,"hasNext":%t,"hasPrevious":false}`,
		strings.Join(users, ","), total, hasNext)
}

func usersOf(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = minimalUser(testID(i), "active")
	}
	return out
}

// userWith is a minimal user with one field set to a raw JSON value.
func userWith(field, rawValue string) string {
	return `{"id":"` + uid1 + `","status":"active","` + field + `":` + rawValue + `}`
}

func TestHostilePages(t *testing.T) {
	long := func(n int) string { return `"` + strings.Repeat("a", n) + `"` }
	roles := func(n int) string {
		rs := make([]string, n)
		for i := range rs {
			rs[i] = fmt.Sprintf(`{"id":"550e8400-e29b-41d4-a716-%012d","name":"r"}`, i)
		}
		return "[" + strings.Join(rs, ",") + "]"
	}
	tests := []struct {
		name  string
		limit int
		body  string
		// want is a part of the error's message; "" when the page must be accepted.
		want  string
		users int
	}{
		// Page size.
		{"a page of 100 when 100 were asked", 100, rawPage(usersOf(100), 100, false), "", 100},
		{"a page of 101 when 100 were asked", 100, rawPage(usersOf(101), 101, false), "more than the 100 users asked for", 0},
		{"a page of 6 when 5 were asked", 5, rawPage(usersOf(6), 6, false), "more than the 5 users asked for", 0},
		{"a page of 101 when 500 were asked (served as 100)", 500, rawPage(usersOf(101), 101, false), "more than the 100 users asked for", 0},
		{"data is null", 100, `{"data":null,"total":0,"hasNext":false}`, "", 0},
		{"data is not a list", 100, `{"data":{"id":"x"},"total":0}`, "data is", 0},
		{"negative total", 100, `{"data":[],"total":-1}`, "out of range", 0},
		{"total not an integer", 100, `{"data":[],"total":1.5}`, "not an integer", 0},
		{"two data fields", 100, `{"data":[],"data":[],"total":0}`, `"data" twice`, 0},
		{"data after the page", 100, `{"data":[],"total":0} {"data":[]}`, "data follows", 0},
		{"not an object", 100, `[]`, "not a JSON object", 0},
		{"an unknown large field is skipped", 100, `{"extra":{"a":[1,2,{"b":` + long(100_000) + `}]},"data":[],"total":0}`, "", 0},
		// Ids.
		{"a UUID id in upper case", 100, rawPage([]string{minimalUser(strings.ToUpper(uid1), "active")}, 1, false), "", 1},
		{"an id that is a path", 100, rawPage([]string{minimalUser("../../admin/keys", "active")}, 1, false), `"../../admin/keys" is not a UUID`, 0},
		{"an id with a slash", 100, rawPage([]string{minimalUser(uid1+"/x", "active")}, 1, false), "is not a UUID", 0},
		{"an empty id", 100, rawPage([]string{minimalUser("", "active")}, 1, false), "has no id", 0},
		{"no id", 100, rawPage([]string{`{"status":"active"}`}, 1, false), "has no id", 0},
		{"a role id that is not a UUID", 100, rawPage([]string{userWith("roles", `[{"id":"admin","name":"Admin"}]`)}, 1, false), `role id "admin" is not a UUID`, 0},
		{"a group id that is not a UUID", 100, rawPage([]string{userWith("groups", `[{"id":"../g"}]`)}, 1, false), `group id "../g" is not a UUID`, 0},
		{"an id with a control character", 100, rawPage([]string{minimalUser(`ab\u0000cd`, "active")}, 1, false), "control characters", 0},
		// UTF-8.
		{"an id that is not UTF-8", 100, rawPage([]string{minimalUser("123e4567-e89b-12d3-a456-42661417400\xff", "active")}, 1, false), "not valid UTF-8", 0},
		{"an email that is not UTF-8", 100, rawPage([]string{userWith("email", "\"a\xc3@x.com\"")}, 1, false), "email", 0},
		{"a first name with a lone surrogate", 100, rawPage([]string{userWith("firstName", `"J\udc00ne"`)}, 1, false), "not valid UTF-8", 0},
		{"a status that is not UTF-8", 100, rawPage([]string{minimalUser(uid1, "activ\xe9")}, 1, false), "not valid UTF-8", 0},
		{"a group name that is not UTF-8", 100, rawPage([]string{userWith("groups", `[{"id":"`+gid1+"\",\"name\":\"\xfe\"}]")}, 1, false), "group name", 0},
		{"a name in Unicode", 100, rawPage([]string{userWith("firstName", `"Zoë 李"`)}, 1, false), "", 1},
		// Status vocabulary.
		{"status pending", 100, rawPage([]string{minimalUser(uid1, "pending")}, 1, false), "", 1},
		{"status INACTIVE", 100, rawPage([]string{minimalUser(uid1, "INACTIVE")}, 1, false), "", 1},
		{"status Active", 100, rawPage([]string{minimalUser(uid1, "Active")}, 1, false), "", 1},
		{"status suspended", 100, rawPage([]string{minimalUser(uid1, "suspended")}, 1, false), `the status "suspended", which is none of pending, active or inactive`, 0},
		{"no status", 100, rawPage([]string{`{"id":"` + uid1 + `"}`}, 1, false), "has no status", 0},
		{"a status with a newline", 100, rawPage([]string{minimalUser(uid1, `active\n`)}, 1, false), "control characters", 0},
		// Lengths.
		{"an email of 254 bytes", 100, rawPage([]string{userWith("email", `"`+strings.Repeat("a", 244)+`@x.example"`)}, 1, false), "", 1},
		{"an email of 300 bytes", 100, rawPage([]string{userWith("email", `"`+strings.Repeat("a", 290)+`@x.example"`)}, 1, false), "email is 300 bytes long", 0},
		{"a first name of 10 KB", 100, rawPage([]string{userWith("firstName", long(10_000))}, 1, false), "firstName is 10000 bytes long", 0},
		{"an image URL of 3000 bytes", 100, rawPage([]string{userWith("image", long(3000))}, 1, false), "image is 3000 bytes long", 0},
		{"a role description of 100 KB", 100, rawPage([]string{userWith("roles", `[{"id":"`+rid1+`","name":"r","description":`+long(100_000)+`}]`)}, 1, false), "role description", 0},
		{"a posture of 1 MB", 100, rawPage([]string{userWith("devices", `[{"id":"d","posture":{"p":`+long(1<<20)+`}}]`)}, 1, false), "posture", 0},
		{"100 roles", 100, rawPage([]string{userWith("roles", roles(100))}, 1, false), "", 1},
		{"101 roles", 100, rawPage([]string{userWith("roles", roles(101))}, 1, false), "101 roles", 0},
		// Size of the body.
		{"a body of 5 MiB", 100, `{"pad":` + long(5<<20) + `,"data":[],"total":0}`, "response larger than", 0},
	}
	var body atomic.Value
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body.Load().(string))
	}))
	ctx := ctxT(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body.Store(tt.body)
			p, err := c.ListUsersPage(ctx, tt.limit, 0)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want the page", err)
				}
				if len(p.Data) != tt.users {
					t.Fatalf("%d users, want %d", len(p.Data), tt.users)
				}
				return
			}
			if !isDecode(err) || p != nil {
				t.Fatalf("page %v, err %v (%T); want a *DecodeError", p, err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, cipherscale.RouteListUsers) {
				t.Errorf("err = %q, want it to name the route and contain %q", msg, tt.want)
			}
			if cipherscale.IsRetryable(err) || cipherscale.RouteOf(err) != cipherscale.RouteListUsers {
				t.Errorf("retryable %v, route %q", cipherscale.IsRetryable(err), cipherscale.RouteOf(err))
			}
			if len(msg) > 600 || !isPrintable(msg) {
				t.Errorf("the message repeats the hostile value: %d bytes, %q", len(msg), msg)
			}
		})
	}
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

// TestHostileSingleAnswers: the answers of the other endpoints are held to the same rules.
func TestHostileSingleAnswers(t *testing.T) {
	var body atomic.Value
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, body.Load().(string))
	}))
	ctx := ctxT(t)
	calls := map[string]func() error{
		"get":        func() error { _, err := c.GetUser(ctx, uid1); return err },
		"update":     func() error { _, err := c.UpdateProfile(ctx, uid1, cipherscale.ProfileUpdate{}); return err },
		"deactivate": func() error { _, err := c.DeactivateUser(ctx, uid1); return err },
		"reactivate": func() error { _, err := c.ReactivateUser(ctx, uid1); return err },
	}
	for _, tt := range []struct{ name, body, want string }{
		{"id that is a path", minimalUser("../../admin/keys", "active"), "not a UUID"},
		{"status unknown", minimalUser(uid1, "deleted"), `"deleted"`},
		{"status not UTF-8", minimalUser(uid1, "\xff"), "not valid UTF-8"},
		{"email too long", userWith("email", `"`+strings.Repeat("e", 400)+`"`), "email is 400 bytes long"},
	} {
		body.Store(tt.body)
		for name, call := range calls {
			if err := call(); !isDecode(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s, %s: err = %v, want a *DecodeError containing %q", tt.name, name, err, tt.want)
			}
		}
	}
	// Roles.
	c2, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body.Load().(string))
	}))
	body.Store(`[{"id":"../../admin","name":"x"}]`)
	if _, err := c2.UserRoles(ctx, uid1, cipherscale.AllRoles); !isDecode(err) || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("roles with a bad id: %v", err)
	}
	// A create answer with a hostile id: the users of the batch are not taken.
	body.Store(`[` + minimalUser("../../admin/keys", "pending") + `]`)
	got, err := c.CreateUsers(ctx, []cipherscale.NewUser{{Email: "a@x.com"}})
	if len(got) != 0 || err == nil {
		t.Errorf("create with a hostile answer: %v, %v", got, err)
	}
}

// TestIDsCheckedBeforeEveryWrite: no id that is not a UUID is ever put in a path or a body.
func TestIDsCheckedBeforeEveryWrite(t *testing.T) {
	var requests atomic.Int32
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	ctx := ctxT(t)
	for _, bad := range []string{"", ".", "..", "../../admin/keys", "a b", uid1 + "/x", uid1[:35], "123e4567-e89b-12d3-a456-42661417400\xff", "123e4567%2fe89b-12d3-a456-426614174001"} {
		for name, call := range map[string]func() error{
			"get":         func() error { _, err := c.GetUser(ctx, bad); return err },
			"update":      func() error { _, err := c.UpdateProfile(ctx, bad, cipherscale.ProfileUpdate{}); return err },
			"delete":      func() error { return c.DeleteUser(ctx, bad) },
			"deactivate":  func() error { _, err := c.DeactivateUser(ctx, bad); return err },
			"reactivate":  func() error { _, err := c.ReactivateUser(ctx, bad); return err },
			"invite":      func() error { return c.ResendInvitation(ctx, bad) },
			"roles":       func() error { _, err := c.UserRoles(ctx, bad, cipherscale.AllRoles); return err },
			"patch roles": func() error { return c.PatchRoles(ctx, bad, cipherscale.RolesPatch{}) },
			"add role":    func() error { return c.PatchRoles(ctx, uid1, cipherscale.RolesPatch{AddedRoles: []string{bad}}) },
			"remove role": func() error { return c.PatchRoles(ctx, uid1, cipherscale.RolesPatch{RemovedRoles: []string{bad}}) },
			"add groups":  func() error { return c.AddToGroups(ctx, bad, nil) },
			"add group":   func() error { return c.AddToGroups(ctx, uid1, []string{gid1, bad}) },
			"rm group":    func() error { return c.RemoveFromGroup(ctx, bad, gid1) },
			"rm group id": func() error { return c.RemoveFromGroup(ctx, uid1, bad) },
			"create": func() error {
				_, err := c.CreateUsers(ctx, []cipherscale.NewUser{{Email: "a@x.com", Groups: []string{bad}}})
				return err
			},
		} {
			err := call()
			if err == nil || !strings.Contains(err.Error(), "not a UUID") {
				t.Errorf("%s(%q): err = %v, want a refusal", name, bad, err)
			}
		}
	}
	// Emails the API would take for another, or that are not UTF-8, are never sent either.
	for _, email := range []string{"a\u202e@x.com", "a\x00@x.com", "a\xff@x.com", strings.Repeat("a", 250) + "@x.com"} {
		if _, err := c.CreateUsers(ctx, []cipherscale.NewUser{{Email: email}}); err == nil {
			t.Errorf("create %q: accepted", email)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests were sent with an invalid id or email", n)
	}
}

// hugePage writes one page of n minimal users as a stream, without building it in memory.
type hugePage struct {
	n       int
	written atomic.Int64
}

func (h *hugePage) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	var buf bytes.Buffer
	flush := func() bool {
		n, err := w.Write(buf.Bytes())
		h.written.Add(int64(n))
		buf.Reset()
		return err == nil
	}
	buf.WriteString(`{"total":1,"hasNext":false,"data":[`)
	for i := range h.n {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"id":"%s","status":"active"}`, testID(i))
		if buf.Len() > 32<<10 && !flush() {
			return
		}
	}
	buf.WriteString(`]}`)
	flush()
}

// TestHugePageIsReadAsAStream: a page of a million users (about 50 MB) is refused at its 101st
// user, without the client allocating anything near its size.
func TestHugePageIsReadAsAStream(t *testing.T) {
	h := &hugePage{n: 1_000_000}
	c, _ := newClient(t, h)
	ctx := ctxT(t)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := c.ListUsers(ctx)
	runtime.ReadMemStats(&after)
	if !isDecode(err) || !strings.Contains(err.Error(), "more than the 100 users asked for") {
		t.Fatalf("err = %v, want a *DecodeError: more users than asked for", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a page of %d users: the client allocated %d KiB; the server wrote %d KiB before the client hung up",
		h.n, alloc>>10, h.written.Load()>>10)
	if alloc > 8<<20 {
		t.Errorf("the client allocated %d MiB to refuse the page, want at most 8", alloc>>20)
	}
}

// endless serves a consistent list that never ends: page after page of fresh users, by offset.
type endless struct {
	pageSize int
	// roles, when set, gives each user that many direct roles: users of unusual size.
	roles    int
	requests atomic.Int32
}

func (e *endless) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	var off int
	_, _ = fmt.Sscan(r.URL.Query().Get("offset"), &off)
	users := make([]string, e.pageSize)
	var roles []string
	for i := range e.roles {
		roles = append(roles, fmt.Sprintf(`{"id":"11111111-0000-4000-8000-%012d","name":"role %d"}`, i, i))
	}
	for i := range users {
		users[i] = minimalUser(testID(off+i), "active")
		if e.roles > 0 {
			users[i] = strings.Replace(users[i], `"roles":[]`, `"roles":[`+strings.Join(roles, ",")+`]`, 1)
		}
	}
	_, _ = io.WriteString(w, rawPage(users, 10, true))
}

func TestListCaps(t *testing.T) {
	ctx := ctxT(t)
	for _, tt := range []struct {
		name     string
		pageSize int
		roles    int
		cfg      func(*cipherscale.Config)
		want     string
		requests int32
	}{
		{"users past MaxListUsers", 100, 0, func(c *cipherscale.Config) { c.MaxListUsers = 500 },
			"more than 500 users", 6},
		// Users of 100 roles (about 22 KiB each, estimated) pass 1 MiB beyond 2 KiB a user
		// within the first page.
		{"memory past MaxListMemory, users of unusual size", 100, 100, func(c *cipherscale.Config) { c.MaxListMemory = 1 << 20 },
			"bytes of memory", 1},
		// Minimal users (about 300 bytes each) stay under 2 KiB a user: the cap is the tenant's
		// size, MaxListUsers.
		{"minimal users are not refused for memory", 100, 0, func(c *cipherscale.Config) { c.MaxListMemory = 64 << 10; c.MaxListUsers = 1000 },
			"more than 1000 users", 11},
		{"pages past MaxListUsers/10", 2, 0, func(c *cipherscale.Config) { c.MaxListUsers = 100 },
			"read 12 pages", 12},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &endless{pageSize: tt.pageSize, roles: tt.roles}
			c, _ := newClient(t, e, tt.cfg)
			_, err := c.ListUsers(ctx)
			if !isDecode(err) || !errors.Is(err, cipherscale.ErrListTooLarge) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a *DecodeError wrapping ErrListTooLarge with %q", err, tt.want)
			}
			if n := e.requests.Load(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		if _, err := cipherscale.New(cipherscale.Config{Key: cipherscale.StaticKey("k"), MaxListUsers: -1}); err == nil {
			t.Error("a negative MaxListUsers was accepted")
		}
		if _, err := cipherscale.New(cipherscale.Config{Key: cipherscale.StaticKey("k"), MaxListMemory: -1}); err == nil {
			t.Error("a negative MaxListMemory was accepted")
		}
	})
}

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		uid1:                                   true,
		strings.ToUpper(uid1):                  true,
		"00000000-0000-0000-0000-000000000000": true,
		"":                                     false,
		uid1[:35]:                              false,
		uid1 + "0":                             false,
		"123e4567e89b-12d3-a456-4266141740011": false,
		"123e4567-e89b-12d3-a456-42661417400g": false,
		"../../admin/keys":                     false,
		"123e4567-e89b-12d3-a456-42661417400\xff": false,
	} {
		if got := cipherscale.IsUUID(s); got != want {
			t.Errorf("IsUUID(%q) = %v, want %v", s, got, want)
		}
	}
}
