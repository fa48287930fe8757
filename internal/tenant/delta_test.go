package tenant_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestIncrementalReads: between full reads, a refresh of an idle tenant costs one list call
// whatever its size; a user changed or created outside the operator is seen by one incremental
// read; a user deleted outside it makes the total differ, and the tenant is read whole at once;
// after FullResyncInterval the read is whole again.
func TestIncrementalReads(t *testing.T) {
	const n = 2500
	sim, api := newSim(t)
	if err := sim.SeedUsers(n, "user%d@example.com"); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	tn := tenant.New(api, tenant.Options{MaxAge: time.Minute, FullResyncInterval: time.Hour, Now: clk.Now})
	ctx := ctxT(t)
	lists := func() int { return sim.Stats().Count(cipherscale.RouteListUsers) }
	refresh := func(what string) int {
		t.Helper()
		sim.ResetStats()
		if err := tn.Refresh(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return lists()
	}
	// A full read: pages of 100 that overlap by one user, and the call for the newest change.
	full := (n-1+cipherscale.MaxPageSize-2)/(cipherscale.MaxPageSize-1) + 1
	if got := refresh("first read"); got != full || tn.Len() != n {
		t.Fatalf("first read: %d list calls, %d users; want a full read (%d calls) of %d", got, tn.Len(), full, n)
	}
	for i := range 5 {
		clk.Advance(time.Minute)
		if got := refresh("idle"); got != 1 {
			t.Fatalf("idle refresh %d: %d list calls, want 1", i, got)
		}
	}

	victim, _ := sim.UserByEmail("user7@example.com")
	if _, err := api.DeactivateUser(ctx, victim.ID); err != nil {
		t.Fatal(err)
	}
	added, err := sim.AddUser(simulator.UserSeed{Email: "late@example.com", Status: cipherscale.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if got := refresh("after a change and a create"); got != 1 {
		t.Errorf("after a change and a create: %d list calls, want 1", got)
	}
	if u, _, err := tn.Get(ctx, victim.ID, false); err != nil || u.Status != cipherscale.StatusInactive {
		t.Errorf("the user deactivated outside: %+v, %v; want inactive in the snapshot", u, err)
	}
	if u, err := tn.Lookup(ctx, "late@example.com"); err != nil || u == nil || u.ID != added.ID {
		t.Errorf("the user created outside: %+v, %v; want it in the snapshot", u, err)
	}

	gone, _ := sim.UserByEmail("user9@example.com")
	if err := sim.DeleteUser(gone.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if got := refresh("after a deletion"); got < full {
		t.Errorf("after a deletion: %d list calls, want the incremental read and a full one (>= %d)", got, full)
	}
	if u, err := tn.Lookup(ctx, "user9@example.com"); err != nil || u != nil || tn.Len() != n {
		t.Errorf("the user deleted outside: %+v, %v, %d users; want gone, %d users", u, err, tn.Len(), n)
	}
	clk.Advance(time.Minute)
	if got := refresh("idle after the full read"); got != 1 {
		t.Errorf("idle after the full read: %d list calls, want 1", got)
	}
	clk.Advance(time.Hour)
	if got := refresh("after fullResyncInterval"); got < full {
		t.Errorf("after fullResyncInterval: %d list calls, want a full read (>= %d)", got, full)
	}
}

// TestFullResyncZeroReadsWhole: FullResyncInterval 0 reads whole at every refresh.
func TestFullResyncZeroReadsWhole(t *testing.T) {
	sim, api := newSim(t)
	if err := sim.SeedUsers(250, "user%d@example.com"); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	tn := tenant.New(api, tenant.Options{MaxAge: time.Minute, Now: clk.Now})
	ctx := ctxT(t)
	// Pages of 100 that overlap by one user: 250 users are 3 pages.
	for i := range 3 {
		sim.ResetStats()
		if err := tn.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := sim.Stats().Count(cipherscale.RouteListUsers); got != 3 {
			t.Errorf("refresh %d: %d list calls, want 3 (a full read of 250)", i, got)
		}
		clk.Advance(time.Minute)
	}
}

// TestIncrementalReadRereadsUsersWrittenDuringIt: a user the operator writes while an
// incremental read is under way keeps its local copy (newer than what the read saw), and the
// next read reads it again, even when others changed after it: only the API's copy names the
// role the patch added.
func TestIncrementalReadRereadsUsersWrittenDuringIt(t *testing.T) {
	sim, api := newSim(t)
	role, err := sim.AddRole(simulator.RoleSeed{Name: "network-admin"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SeedUsers(50, "user%d@example.com"); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	tn := tenant.New(api, tenant.Options{MaxAge: time.Minute, FullResyncInterval: time.Hour, Now: clk.Now})
	ctx := ctxT(t)
	if err := tn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	x, _ := sim.UserByEmail("user3@example.com")
	y, _ := sim.UserByEmail("user4@example.com")
	var once sync.Once
	sim.SetHook(func(route string, r *http.Request) {
		if route != cipherscale.RouteListUsers || r.URL.Query().Get("sort") != "-updatedAt" {
			return
		}
		once.Do(func() {
			// The operator's write lands before the page is served, its answer after the read
			// began; then a person changes another user.
			if err := tn.PatchRoles(ctx, x.ID, cipherscale.RolesPatch{AddedRoles: []string{role.ID}, RemovedRoles: []string{}}); err != nil {
				t.Error(err)
			}
			if _, err := api.UpdateProfile(ctx, y.ID, cipherscale.ProfileUpdate{FirstName: ptrS("Yves")}); err != nil {
				t.Error(err)
			}
		})
	})
	t.Cleanup(func() { sim.SetHook(nil) })
	for i := range 2 {
		clk.Advance(2 * time.Minute)
		if err := tn.Refresh(ctx); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	u, _, err := tn.Get(ctx, x.ID, false)
	if err != nil || len(u.Roles) != 1 || u.Roles[0].Name != "network-admin" {
		t.Errorf("the user written during a read: %+v, %v; want its role named by the API's copy", u, err)
	}
	if u, _, _ := tn.Get(ctx, y.ID, false); u == nil || u.FirstName != "Yves" {
		t.Errorf("the user changed by a person: %+v; want Yves", u)
	}
}

func ptrS(s string) *string { return &s }

// unsortedAPI, once broken, answers the pages of users sorted by -updatedAt oldest first, as
// an API that reads the sign the other way would.
type unsortedAPI struct {
	cipherscale.API
	broken *atomic.Bool
}

func (a unsortedAPI) ListUsersPage(ctx context.Context, limit, offset int, sort ...string) (*cipherscale.Page, error) {
	if a.broken.Load() {
		sort = []string{"updatedAt"}
	}
	return a.API.ListUsersPage(ctx, limit, offset, sort...)
}

// TestIncrementalReadNeedsTheOrder: an API that does not sort by updatedAt cannot say where the
// changes end; the tenant is read whole, and a change is seen.
func TestIncrementalReadNeedsTheOrder(t *testing.T) {
	sim, api := newSim(t)
	if err := sim.SeedUsers(150, "user%d@example.com"); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	broken := &atomic.Bool{}
	tn := tenant.New(unsortedAPI{api, broken}, tenant.Options{MaxAge: time.Minute, FullResyncInterval: time.Hour, Now: clk.Now})
	ctx := ctxT(t)
	if err := tn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	late, _ := sim.UserByEmail("user140@example.com")
	if _, err := api.DeactivateUser(ctx, late.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if err := tn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _, err := tn.Get(ctx, late.ID, false); err != nil || u.Status != cipherscale.StatusInactive {
		t.Errorf("the user deactivated outside: %+v, %v; want inactive (the tenant read whole)", u, err)
	}
}
