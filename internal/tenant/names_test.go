package tenant_test

import (
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestLocalWritesKeepNames: a role or group added by a write whose answer has no body carries
// the name the tenant reported for it on another user, so that status can name it at once.
func TestLocalWritesKeepNames(t *testing.T) {
	sim, api := newSim(t)
	admin, _ := sim.AddRole(simulator.RoleSeed{Name: "Admin", Type: cipherscale.RoleTypeAdmin})
	fresh, _ := sim.AddRole(simulator.RoleSeed{Name: "Fresh", Type: cipherscale.RoleTypeSupport})
	eng, _ := sim.AddGroup(simulator.GroupSeed{Name: "Engineering"})
	if _, err := sim.AddUser(simulator.UserSeed{Email: "a@example.com", Status: cipherscale.StatusActive,
		Roles: []string{admin.ID}, Groups: []string{eng.ID}}); err != nil {
		t.Fatal(err)
	}
	b, err := sim.AddUser(simulator.UserSeed{Email: "b@example.com", Status: cipherscale.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour})
	ctx := ctxT(t)
	if _, err := tn.Lookup(ctx, "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := tn.PatchRoles(ctx, b.ID, cipherscale.RolesPatch{AddedRoles: []string{admin.ID, fresh.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := tn.AddToGroups(ctx, b.ID, []string{eng.ID}); err != nil {
		t.Fatal(err)
	}
	got, _, err := tn.Get(ctx, b.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, r := range got.Roles {
		names[r.ID] = r.Name
	}
	for _, g := range got.Groups {
		names[g.ID] = g.Name
	}
	// "Fresh" is on no user yet: its name comes with the next read of the tenant.
	want := map[string]string{admin.ID: "Admin", fresh.ID: "", eng.ID: "Engineering"}
	for id, name := range want {
		if n, ok := names[id]; !ok || n != name {
			t.Errorf("%s: name %q (present %v), want %q", id, n, ok, name)
		}
	}
}
