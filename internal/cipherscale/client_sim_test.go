package cipherscale_test

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

const simKey = "sim-key-51b2e8"

// newSim serves a simulator and returns a client of it: no client-side rate limit unless mod
// sets one, retries as in production.
func newSim(t *testing.T, mod ...func(*cipherscale.Config)) (*simulator.Server, *cipherscale.Client) {
	t.Helper()
	sim := simulator.New(simKey)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := cipherscale.Config{BaseURL: srv.URL, Key: cipherscale.StaticKey(simKey), QPS: math.Inf(1)}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := cipherscale.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func roleIDs(roles []cipherscale.Role) []string {
	ids := make([]string, 0, len(roles))
	for _, r := range roles {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	return ids
}

func TestSimEveryEndpoint(t *testing.T) {
	sim, c := newSim(t)
	ctx := ctxT(t)
	direct, err := sim.AddRole(simulator.RoleSeed{Name: "Admins", Type: cipherscale.RoleTypeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	inherited, err := sim.AddRole(simulator.RoleSeed{Name: "Billing", Type: cipherscale.RoleTypeBilling})
	if err != nil {
		t.Fatal(err)
	}
	group, err := sim.AddGroup(simulator.GroupSeed{Name: "Finance", Roles: []string{inherited.ID}})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := sim.AddUser(simulator.UserSeed{Email: "owner@corp.example", Status: cipherscale.StatusActive, IsOwner: true})
	if err != nil {
		t.Fatal(err)
	}

	// 2: create, one user (sent as an array).
	created, err := c.CreateUsers(ctx, []cipherscale.NewUser{{Email: "Jane@Corp.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || created[0].Status.Normalized() != cipherscale.StatusPending || created[0].ID == "" {
		t.Fatalf("created %+v", created)
	}
	id := created[0].ID
	if n := sim.InvitationsSent("jane@corp.example"); n != 1 {
		t.Errorf("%d invitations, want 1", n)
	}

	// 2: an email that exists is refused, naming it.
	_, err = c.CreateUsers(ctx, []cipherscale.NewUser{{Email: "jane@corp.example"}, {Email: "new@corp.example"}})
	var ae *cipherscale.APIError
	if !cipherscale.IsConflict(err) || !errors.As(err, &ae) || len(ae.Emails) != 1 ||
		cipherscale.NormalizeEmail(ae.Emails[0]) != "jane@corp.example" {
		t.Errorf("create of an existing email: %v (%+v)", err, ae)
	}
	if _, ok := sim.UserByEmail("new@corp.example"); ok {
		t.Error("a refused batch created a user")
	}

	// 1: list.
	page, err := c.ListUsersPage(ctx, 10, 0)
	if err != nil || page.Total != 2 || len(page.Data) != 2 || page.HasNext {
		t.Fatalf("page %+v, %v", page, err)
	}

	// 3, 4: get, update.
	u, err := c.GetUser(ctx, id)
	if err != nil || u.ID != id || cipherscale.NormalizeEmail(u.Email) != "jane@corp.example" {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	first := "Jane"
	u, err = c.UpdateProfile(ctx, id, cipherscale.ProfileUpdate{FirstName: &first})
	if err != nil || u.FirstName != "Jane" {
		t.Fatalf("UpdateProfile = %+v, %v", u, err)
	}
	last := "Doe"
	u, err = c.UpdateProfile(ctx, id, cipherscale.ProfileUpdate{LastName: &last})
	if err != nil || u.FirstName != "Jane" || u.LastName != "Doe" {
		t.Fatalf("UpdateProfile left other fields alone? %+v, %v", u, err)
	}

	// 8: resend while pending; refused once active.
	if err := c.ResendInvitation(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := sim.InvitationsSent("jane@corp.example"); n != 2 {
		t.Errorf("%d invitations, want 2", n)
	}
	if _, err := sim.Accept(id); err != nil {
		t.Fatal(err)
	}
	if err := c.ResendInvitation(ctx, id); !cipherscale.IsConflict(err) {
		t.Errorf("resend to an active user: %v, want 409", err)
	}

	// 6, 7: deactivate, reactivate; not the owner.
	u, err = c.DeactivateUser(ctx, id)
	if err != nil || u.Status.Normalized() != cipherscale.StatusInactive {
		t.Fatalf("DeactivateUser = %+v, %v", u, err)
	}
	u, err = c.ReactivateUser(ctx, id)
	if err != nil || u.Status.Normalized() != cipherscale.StatusActive {
		t.Fatalf("ReactivateUser = %+v, %v", u, err)
	}
	if _, err := c.DeactivateUser(ctx, owner.ID); !cipherscale.IsForbidden(err) {
		t.Errorf("deactivating the owner: %v, want 403", err)
	}

	// 10, 11, 9: roles directly and through a group.
	if err := c.PatchRoles(ctx, id, cipherscale.RolesPatch{AddedRoles: []string{direct.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddToGroups(ctx, id, []string{group.ID}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddToGroups(ctx, id, []string{group.ID}); err != nil {
		t.Errorf("adding a group twice: %v, want a no-op", err)
	}
	for _, tt := range []struct {
		filter cipherscale.RoleFilter
		want   []string
	}{
		{cipherscale.DirectRolesOnly, []string{direct.ID}},
		{cipherscale.GroupRolesOnly, []string{inherited.ID}},
		{cipherscale.AllRoles, roleIDs([]cipherscale.Role{direct, inherited})},
	} {
		roles, err := c.UserRoles(ctx, id, tt.filter)
		if err != nil || !slices.Equal(roleIDs(roles), tt.want) {
			t.Errorf("UserRoles(%d) = %v, %v; want %v", tt.filter, roleIDs(roles), err, tt.want)
		}
	}
	u, err = c.GetUser(ctx, id)
	if err != nil || !slices.Equal(u.RoleIDs(), []string{direct.ID}) || !slices.Equal(u.GroupIDs(), []string{group.ID}) {
		t.Errorf("user after role and group changes: %+v, %v", u, err)
	}
	if err := c.PatchRoles(ctx, id, cipherscale.RolesPatch{RemovedRoles: []string{direct.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddToGroups(ctx, id, []string{"00000000-0000-4000-8000-00000000dead"}); !cipherscale.IsNotFound(err) {
		t.Errorf("adding an unknown group: %v, want 404", err)
	}

	// 12: remove from group.
	if err := c.RemoveFromGroup(ctx, id, group.ID); err != nil {
		t.Fatal(err)
	}
	roles, err := c.UserRoles(ctx, id, cipherscale.AllRoles)
	if err != nil || len(roles) != 0 {
		t.Errorf("roles after removals: %v, %v", roleIDs(roles), err)
	}

	// 5: delete, twice; then it is gone.
	if err := c.DeleteUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteUser(ctx, id); err != nil {
		t.Errorf("deleting a deleted user: %v, want nil", err)
	}
	if _, err := c.GetUser(ctx, id); !cipherscale.IsNotFound(err) {
		t.Errorf("GetUser of a deleted user: %v, want 404", err)
	}

	// A wrong key.
	bad, err := cipherscale.New(cipherscale.Config{BaseURL: c.BaseURL(), Key: cipherscale.StaticKey("wrong-key")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.ListUsers(ctx); !cipherscale.IsUnauthorized(err) || strings.Contains(err.Error(), "wrong-key") {
		t.Errorf("wrong key: %v, want 401", err)
	}
}

func TestSimPagination(t *testing.T) {
	sim, c := newSim(t)
	ctx := ctxT(t)
	if err := sim.SeedUsers(250, "user%03d@example.com"); err != nil {
		t.Fatal(err)
	}
	users, err := c.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 250 {
		t.Fatalf("%d users, want 250", len(users))
	}
	ids := map[string]bool{}
	for i, u := range users {
		ids[u.ID] = true
		if want := fmt.Sprintf("user%03d@example.com", i+1); u.Email != want {
			t.Fatalf("user %d is %s, want %s (creation order)", i, u.Email, want)
		}
	}
	if len(ids) != 250 {
		t.Errorf("%d distinct ids", len(ids))
	}
	if n := sim.Stats().Count(cipherscale.RouteListUsers); n != 3 {
		t.Errorf("%d list requests, want 3", n)
	}
	page, err := c.ListUsersPage(ctx, 5, 10, "-email")
	if err != nil || len(page.Data) != 5 || page.Data[0].Email != "user240@example.com" || page.Page != 2 || !page.HasNext || !page.HasPrevious {
		t.Errorf("sorted page: %+v, %v", page, err)
	}
	page, err = c.ListUsersPage(ctx, 500, 200)
	if err != nil || len(page.Data) != 50 || page.HasNext {
		t.Errorf("page beyond the cap: %d users, hasNext %v, %v", len(page.Data), page != nil && page.HasNext, err)
	}
}

func TestSimCreateBatches(t *testing.T) {
	sim, c := newSim(t)
	in := newUsers(250, "batch")
	got, err := c.CreateUsers(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	checkCreated(t, got, in)
	st := sim.Stats()
	if n := st.Count(cipherscale.RouteCreateUsers); n != 3 {
		t.Errorf("%d create requests, want 3", n)
	}
	if n := st.Count(cipherscale.RouteListUsers); n != 0 {
		t.Errorf("%d list requests, want none", n)
	}
	if n := len(sim.Users()); n != 250 {
		t.Errorf("%d users in the tenant", n)
	}
}

func TestSimThrottled(t *testing.T) {
	sim, c := newSim(t)
	ctx := ctxT(t)
	u, err := sim.AddUser(simulator.UserSeed{Email: "a@x.example"})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteGetUser, Status: 429, RetryAfterSeconds: 1, Count: 1}})
	start := time.Now()
	if _, err := c.GetUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("the call took %v, want about the 1s of Retry-After", d)
	}
	st := sim.Stats()
	if st.CountStatus(cipherscale.RouteGetUser, 429) != 1 || st.CountStatus(cipherscale.RouteGetUser, 200) != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSimRateLimiter(t *testing.T) {
	sim, c := newSim(t, func(c *cipherscale.Config) { c.QPS, c.Burst = 20, 1 })
	ctx := ctxT(t)
	sim.SetLimit(25, 5) // the client must stay below it
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < 41; i += 4 {
				if _, err := c.ListUsersPage(ctx, 1, 0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// 41 calls at 20/s with a burst of 1: 40 intervals of 50ms.
	if d := time.Since(start); d < 1800*time.Millisecond || d > 4*time.Second {
		t.Errorf("41 calls took %v, want about 2s", d)
	}
	st := sim.Stats()
	if st.Count(cipherscale.RouteListUsers) != 41 || st.CountStatus(cipherscale.RouteListUsers, 429) != 0 {
		t.Errorf("stats %+v, want 41 requests and no 429", st)
	}
}

func TestSimServerErrors(t *testing.T) {
	sim, c := newSim(t)
	ctx := ctxT(t)
	u, err := sim.AddUser(simulator.UserSeed{Email: "p@x.example"})
	if err != nil {
		t.Fatal(err)
	}

	// Idempotent: retried.
	sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteGetUser, Status: 503, Count: 2}})
	if _, err := c.GetUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if n := sim.Stats().Count(cipherscale.RouteGetUser); n != 3 {
		t.Errorf("%d GET requests, want 3", n)
	}
	sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RoutePatchRoles, Status: 502, Count: 1}})
	if err := c.PatchRoles(ctx, u.ID, cipherscale.RolesPatch{}); err != nil {
		t.Fatal(err)
	}
	if n := sim.Stats().Count(cipherscale.RoutePatchRoles); n != 2 {
		t.Errorf("%d PATCH requests, want 2", n)
	}

	// Invite: not retried, no second email.
	sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteResendInvitation, Status: 500, Count: 1}})
	if err := c.ResendInvitation(ctx, u.ID); cipherscale.StatusOf(err) != 500 {
		t.Errorf("invite: %v, want the 500", err)
	}
	if n := sim.Stats().Count(cipherscale.RouteResendInvitation); n != 1 {
		t.Errorf("%d invite requests, want 1", n)
	}
	if n := sim.InvitationsSent("p@x.example"); n != 0 {
		t.Errorf("%d invitations, want 0", n)
	}
	sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteResendInvitation, Drop: true, Count: 1}})
	if err := c.ResendInvitation(ctx, u.ID); !cipherscale.IsTransport(err) {
		t.Errorf("invite dropped: %v, want a *TransportError", err)
	}
	if n := sim.InvitationsSent("p@x.example"); n != 1 {
		t.Errorf("%d invitations, want 1 (the dropped call was applied once)", n)
	}
}

func TestSimCreateOutcomeUnknown(t *testing.T) {
	t.Run("dropped after being applied", func(t *testing.T) {
		sim, c := newSim(t)
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, Drop: true, Count: 1}})
		got, err := c.CreateUsers(ctxT(t), []cipherscale.NewUser{{Email: "dropped@x.example"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID == "" || cipherscale.NormalizeEmail(got[0].Email) != "dropped@x.example" {
			t.Fatalf("got %+v", got)
		}
		if n := sim.InvitationsSent("dropped@x.example"); n != 1 {
			t.Errorf("%d invitations, want 1", n)
		}
		if n := len(sim.Users()); n != 1 {
			t.Errorf("%d users, want 1", n)
		}
		live, ok := sim.UserByEmail("dropped@x.example")
		if !ok || live.ID != got[0].ID {
			t.Errorf("tenant user %+v, client returned %s", live, got[0].ID)
		}
		st := sim.Stats()
		if st.Count(cipherscale.RouteCreateUsers) != 1 || st.Count(cipherscale.RouteListUsers) != 1 {
			t.Errorf("stats %+v: want one create and one list", st)
		}
	})
	t.Run("500 not applied", func(t *testing.T) {
		sim, c := newSim(t)
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, Status: 500, Count: 1}})
		in := newUsers(3, "five")
		got, err := c.CreateUsers(ctxT(t), in)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, in)
		for _, n := range in {
			if k := sim.InvitationsSent(n.Email); k != 1 {
				t.Errorf("%d invitations to %s, want 1", k, n.Email)
			}
		}
		if n := sim.Stats().Count(cipherscale.RouteCreateUsers); n != 2 {
			t.Errorf("%d create requests, want 2", n)
		}
	})
	t.Run("429 retried", func(t *testing.T) {
		sim, c := newSim(t)
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, Status: http.StatusTooManyRequests, RetryAfterSeconds: 1, Count: 1}})
		got, err := c.CreateUsers(ctxT(t), []cipherscale.NewUser{{Email: "slow@x.example"}})
		if err != nil || len(got) != 1 {
			t.Fatalf("got %v, %v", got, err)
		}
		st := sim.Stats()
		if st.Count(cipherscale.RouteCreateUsers) != 2 || st.Count(cipherscale.RouteListUsers) != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}
