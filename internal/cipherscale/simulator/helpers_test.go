package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

const testKey = "s3cr3t-test-key"

// Fixed ids of the fixture.
const (
	roleAdmin   = "role-admin"
	roleSupport = "role-support"
	roleAuditor = "role-auditor"
	groupEng    = "group-eng"
	groupOps    = "group-ops"
)

// newTestServer starts the simulator behind httptest.
func newTestServer(t testing.TB) (*Server, *httptest.Server) {
	t.Helper()
	s := New(testKey)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// fixture adds three roles, two groups and an active owner; it returns the owner's id.
func fixture(t testing.TB, s *Server) string {
	t.Helper()
	for _, r := range []RoleSeed{
		{ID: roleAdmin, Name: "Admin", Type: cipherscale.RoleTypeAdmin},
		{ID: roleSupport, Name: "Support", Type: cipherscale.RoleTypeSupport},
		{ID: roleAuditor, Name: "Auditor", Type: cipherscale.RoleTypeAuditor, Description: "reads"},
	} {
		if _, err := s.AddRole(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []GroupSeed{
		{ID: groupEng, Name: "Engineering", Roles: []string{roleAuditor, roleSupport}},
		{ID: groupOps, Name: "Ops", Description: "operations", Roles: []string{roleAuditor}},
	} {
		if _, err := s.AddGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	owner, err := s.AddUser(UserSeed{Email: "owner@example.com", Status: cipherscale.StatusActive, IsOwner: true,
		Roles: []string{roleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	return owner.ID
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; key "" sends no apikey header.
func do(t testing.TB, base, key, method, path, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("apikey", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// subset reports where got does not contain want: objects must hold want's keys (recursively),
// arrays must have the same length and match element by element, other values must be equal.
func subset(want, got any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %v", path, got)
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
			if err := subset(w[k], gv, path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %v", path, got)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: want %d items, got %d: %v", path, len(w), len(g), g)
		}
		for i := range w {
			if err := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("%s: want %v, got %v", path, want, got)
		}
		return nil
	}
}

func mustParseTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q is not RFC 3339: %v", s, err)
	}
	return v
}
