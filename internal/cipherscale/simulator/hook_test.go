package simulator

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// TestHookAndDeleteUser: the hook runs before each authorized API request with its route, and
// may change the tenant; DeleteUser removes a user as another administrator would.
func TestHookAndDeleteUser(t *testing.T) {
	s, ts := newTestServer(t)
	a, err := s.AddUser(UserSeed{Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AddUser(UserSeed{Email: "b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var routes []string
	s.SetHook(func(route string, _ *http.Request) {
		mu.Lock()
		routes = append(routes, route)
		mu.Unlock()
		if route == cipherscale.RouteListUsers {
			_ = s.DeleteUser(a.ID) // between the request and its answer
		}
	})
	if r := do(t, ts.URL, "", http.MethodGet, "/tenants/users", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("without a key: %d", r.status)
	}
	r := do(t, ts.URL, testKey, http.MethodGet, "/tenants/users?limit=10", "")
	page := decode[cipherscale.Page](t, r.body)
	if len(page.Data) != 1 || page.Data[0].ID != b.ID || page.Total != 1 {
		t.Errorf("page after the hook deleted a user: %+v", page)
	}
	do(t, ts.URL, testKey, http.MethodGet, "/tenants/users/"+b.ID, "")
	mu.Lock()
	got := append([]string(nil), routes...)
	mu.Unlock()
	if want := []string{cipherscale.RouteListUsers, cipherscale.RouteGetUser}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("hook saw %v, want %v (unauthorized requests are not hooked)", got, want)
	}
	if err := s.DeleteUser(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a deleted user: %v, want ErrNotFound", err)
	}
	s.SetHook(nil)
	if _, ok := s.UserByID(b.ID); !ok {
		t.Error("the other user is gone")
	}
}
