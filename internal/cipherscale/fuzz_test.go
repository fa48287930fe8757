package cipherscale_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// The fuzz targets feed arbitrary bytes to the decoding of the API's answers. Their seed corpora
// live in testdata/fuzz/<target>/ and run with every plain `go test`; explore further with, e.g.,
//
//	go test -run='^$' -fuzz='^FuzzClientResponse$' -fuzztime=30s ./internal/cipherscale/

// fuzzSampleUser is the shape of the reference's sample User, with real timestamps.
const fuzzSampleUser = `{
  "id": "123e4567-e89b-12d3-a456-426614174000",
  "createdAt": "2023-01-15T10:30:00Z",
  "updatedAt": "2023-01-15T10:30:00Z",
  "lastConnection": "2023-01-15T14:30:00Z",
  "email": "jane.smith@company.com",
  "status": "active",
  "firstName": "Jane",
  "lastName": "Smith",
  "isOwner": false,
  "maxDevices": 0,
  "image": "https://example.com/avatars/jane-smith.jpg",
  "roles": [{"id": "550e8400-e29b-41d4-a716-446655440001", "createdAt": "2023-01-15T10:30:00Z",
    "updatedAt": "2023-01-15T10:30:00Z", "name": "Admin", "description": "d", "deleteable": false, "type": "ADMIN"}],
  "groups": [{"id": "550e8400-e29b-41d4-a716-446655440000", "name": "Engineering Team",
    "description": "Software engineering team", "createdAt": "2023-01-15T10:30:00Z", "updatedAt": "2023-01-15T10:30:00Z"}],
  "devices": [{"id": "d1", "name": "laptop", "active": true, "status": "Online",
    "user": {"id": "550e8400-e29b-41d4-a716-446655440000", "email": "john.doe@company.com"},
    "hardwareId": "hw", "posture": {}, "appVersion": "1.2.3"}]
}`

// fuzzSampleRole is the reference's sample answer of GET /tenants/users/{id}/roles: one object.
const fuzzSampleRole = `{"id": "550e8400-e29b-41d4-a716-446655440001", "name": "Owner", "description": "d", "deleteable": false, "type": "OWNER"}`

func addJSONSeeds(f *testing.F) {
	for _, s := range []string{
		fuzzSampleUser,
		fuzzSampleRole,
		"[" + fuzzSampleRole + "]",
		`{"data": [` + fuzzSampleUser + `], "total": 1, "page": 0, "limit": 10, "hasNext": false, "hasPrevious": false}`,
		`{"id": "u1", "status": "Suspended", "roles": null, "groups": null, "devices": null, "maxDevices": null}`,
		`{"id": "u1", "status": "pending", "roles": {"id": "r1", "name": "n"}}`,
		`{"data": null, "total": -1}`,
		`{"id": "id", "createdAt": "createdAt", "status": "status"}`,
		`null`, `[]`, `{}`, `""`, `0`, ``, `{"roles": [null]}`, `{"data": [null]}`,
	} {
		f.Add([]byte(s))
	}
}

func FuzzDecodeUser(f *testing.F) {
	addJSONSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var us []cipherscale.User
		_ = json.Unmarshal(data, &us)
		var u cipherscale.User
		if json.Unmarshal(data, &u) == nil {
			// What decoded encodes again and decodes to the same roles.
			b, err := json.Marshal(u)
			if err != nil {
				t.Fatalf("a decoded user does not encode: %v", err)
			}
			var again cipherscale.User
			if err := json.Unmarshal(b, &again); err != nil {
				t.Fatalf("an encoded user does not decode: %v\n%s", err, b)
			}
			if len(again.Roles) != len(u.Roles) {
				t.Errorf("roles changed in a round trip: %d, then %d", len(u.Roles), len(again.Roles))
			}
			_ = u.RoleIDs()
			_ = u.GroupIDs()
			_ = u.Status.Known()
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	addJSONSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p cipherscale.Page
		if json.Unmarshal(data, &p) == nil {
			for _, u := range p.Data {
				_ = u.RoleIDs()
			}
		}
	})
}

func FuzzDecodeRoleList(f *testing.F) {
	addJSONSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var l cipherscale.RoleList
		lerr := json.Unmarshal(data, &l)
		trimmed := bytes.TrimSpace(data)

		// A single role object is read as a one-element list.
		var r cipherscale.Role
		if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(data, &r) == nil {
			if lerr != nil {
				t.Fatalf("a role object decodes as a Role but not as a RoleList: %v", lerr)
			}
			if len(l) != 1 || !reflect.DeepEqual(l[0], r) {
				t.Fatalf("a role object decodes as %+v, want [%+v]", l, r)
			}
		}
		// A list decodes as it would into []Role.
		var rs []cipherscale.Role
		if len(trimmed) > 0 && trimmed[0] == '[' && json.Unmarshal(data, &rs) == nil {
			if lerr != nil {
				t.Fatalf("a list decodes as []Role but not as a RoleList: %v", lerr)
			}
			if !reflect.DeepEqual([]cipherscale.Role(l), rs) {
				t.Fatalf("a list decodes as %+v, want %+v", l, rs)
			}
		}
		// null is an empty list.
		if bytes.Equal(trimmed, []byte("null")) && (lerr != nil || l != nil) {
			t.Fatalf("null decodes as %+v, %v; want nil, nil", l, lerr)
		}
		// Inside a user, the same holds for "roles".
		var u cipherscale.User
		_ = json.Unmarshal(append(append([]byte(`{"id":"u","status":"active","roles":`), data...), '}'), &u)
	})
}

// fuzzServer answers every request with the current body as a 200.
type fuzzServer struct {
	mu   sync.Mutex
	body []byte
}

func (s *fuzzServer) set(b []byte) {
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func (s *fuzzServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	b := s.body
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// checkDecodeOutcome fails unless err is nil or an error the client documents for an answer it
// cannot read.
func checkDecodeOutcome(t *testing.T, call string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var de *cipherscale.DecodeError
	var ae *cipherscale.APIError
	if !errors.As(err, &de) && !errors.As(err, &ae) {
		t.Fatalf("%s: error of type %T, want *DecodeError or *APIError: %v", call, err, err)
	}
	if cipherscale.IsRetryable(err) {
		t.Errorf("%s: a malformed 200 answer is reported as retryable: %v", call, err)
	}
}

func FuzzClientResponse(f *testing.F) {
	addJSONSeeds(f)
	srv := &fuzzServer{}
	hs := httptest.NewServer(srv)
	f.Cleanup(hs.Close)
	c, err := cipherscale.New(cipherscale.Config{
		BaseURL:    hs.URL,
		Key:        cipherscale.StaticKey("fuzz-key"),
		QPS:        math.Inf(1),
		MaxRetries: -1,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		srv.set(data)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		u, err := c.GetUser(ctx, "123e4567-e89b-12d3-a456-426614174000")
		checkDecodeOutcome(t, "GetUser", err)
		if err == nil {
			if u == nil {
				t.Fatal("GetUser returned neither a user nor an error")
			}
			if !cipherscale.IsUUID(u.ID) || !u.Status.Known() || !utf8.ValidString(u.Email+u.FirstName+u.LastName+u.Image) {
				t.Errorf("GetUser returned a user the client must refuse: %+v", u)
			}
		}

		p, err := c.ListUsersPage(ctx, 10, 0)
		checkDecodeOutcome(t, "ListUsersPage", err)
		if err == nil {
			if p == nil {
				t.Fatal("ListUsersPage returned neither a page nor an error")
			}
			if p.Total < 0 {
				t.Errorf("ListUsersPage returned a negative total %d", p.Total)
			}
			for i, u := range p.Data {
				if !cipherscale.IsUUID(u.ID) || !u.Status.Known() {
					t.Errorf("ListUsersPage returned user %d with an invalid id or status: %+v", i, u)
				}
			}
			if len(p.Data) > 10 {
				t.Errorf("ListUsersPage returned %d users, 10 were asked for", len(p.Data))
			}
		}

		roles, err := c.UserRoles(ctx, "123e4567-e89b-12d3-a456-426614174000", cipherscale.AllRoles)
		checkDecodeOutcome(t, "UserRoles", err)
		var one cipherscale.Role
		if trimmed := bytes.TrimSpace(data); err == nil && len(trimmed) > 0 && trimmed[0] == '{' &&
			json.Unmarshal(data, &one) == nil && len(roles) != 1 {
			t.Errorf("UserRoles read a single role object as %d roles", len(roles))
		}
	})
}
