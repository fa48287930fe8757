package tenant_test

import (
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// roleReads counts the answered GET /tenants/users/{id}/roles calls.
func roleReads(sim *simulator.Server) int {
	n := 0
	for _, r := range sim.Stats().Requests {
		if r.Route == cipherscale.RouteUserRoles {
			n += r.Count
		}
	}
	return n
}

func TestGroupInheritedRoles(t *testing.T) {
	sim, api := newSim(t)
	ctx := ctxT(t)
	admin, err := sim.AddRole(simulator.RoleSeed{Name: "Admin", Type: cipherscale.RoleTypeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	support, err := sim.AddRole(simulator.RoleSeed{Name: "Support", Type: cipherscale.RoleTypeSupport})
	if err != nil {
		t.Fatal(err)
	}
	admins, _ := sim.AddGroup(simulator.GroupSeed{Name: "Admins", Roles: []string{admin.ID}})
	eng, _ := sim.AddGroup(simulator.GroupSeed{Name: "Eng", Roles: []string{support.ID}})
	empty, _ := sim.AddGroup(simulator.GroupSeed{Name: "Empty", Roles: []string{admin.ID}})
	// Eng's members: one also in Admins (inherits both), one in Eng alone (the one read).
	if _, err := sim.AddUser(simulator.UserSeed{Email: "both@example.com", Groups: []string{eng.ID, admins.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.AddUser(simulator.UserSeed{Email: "eng@example.com", Groups: []string{eng.ID}}); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	tn := tenant.New(api, tenant.Options{MaxAge: time.Minute, Now: clk.Now})

	got, err := tn.GroupInheritedRoles(ctx, eng.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0]) != 1 || cipherscale.NormalizeID(got[0][0].ID) != cipherscale.NormalizeID(support.ID) || got[0][0].Type != cipherscale.RoleTypeSupport {
		t.Fatalf("Eng: %+v, want the member of Eng alone, inheriting the support role", got)
	}
	got, err = tn.GroupInheritedRoles(ctx, admins.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("Admins: %+v, want its one member's two inherited roles", got)
	}
	// A group without members: nothing to read, no call.
	reads := roleReads(sim)
	if got, err := tn.GroupInheritedRoles(ctx, empty.ID); err != nil || len(got) != 0 {
		t.Fatalf("Empty: %+v, %v; want nothing", got, err)
	}
	if roleReads(sim) != reads {
		t.Errorf("a group without members cost a roles call")
	}
	// Kept for MaxAge, read again after it.
	if _, err := tn.GroupInheritedRoles(ctx, eng.ID); err != nil {
		t.Fatal(err)
	}
	if roleReads(sim) != reads {
		t.Errorf("a kept reading was read again")
	}
	clk.Advance(2 * time.Minute)
	if _, err := tn.GroupInheritedRoles(ctx, eng.ID); err != nil {
		t.Fatal(err)
	}
	if roleReads(sim) != reads+1 {
		t.Errorf("%d roles calls after MaxAge, want 1", roleReads(sim)-reads)
	}
}
