package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// twinAPI lists, besides the tenant's users, a second user for one email in another case. The
// simulator refuses such a user, as the contract says the service does; a tenant that holds one
// anyway (made before the rule, or by a migration) must not make the operator pick one.
type twinAPI struct {
	cipherscale.API
	twin cipherscale.User
}

func (a *twinAPI) ListUsers(ctx context.Context) ([]cipherscale.User, error) {
	users, err := a.API.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	return append(users, a.twin), nil
}

func (a *twinAPI) GetUser(ctx context.Context, id string) (*cipherscale.User, error) {
	if id == a.twin.ID {
		u := a.twin
		return &u, nil
	}
	return a.API.GetUser(ctx, id)
}

// TestAmbiguousEmail: two users whose emails differ only in case are both kept, and a lookup of
// that email names both instead of picking one.
func TestAmbiguousEmail(t *testing.T) {
	sim, api := newSim(t)
	ctx := ctxT(t)
	a, err := sim.AddUser(simulator.UserSeed{Email: "Twin@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	b := cipherscale.User{ID: "0f0f0f0f-0000-4000-8000-000000000001", Email: "twin@EXAMPLE.com", Status: cipherscale.StatusActive}
	other, err := sim.AddUser(simulator.UserSeed{Email: "single@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant.New(&twinAPI{API: api, twin: b}, tenant.Options{MaxAge: time.Hour})

	for _, lookup := range []func() error{
		func() error { _, err := tn.Lookup(ctx, "twin@example.com"); return err },
		func() error {
			_, err := tn.LookupMany(ctx, []string{"single@example.com", "TWIN@example.com"})
			return err
		},
	} {
		err := lookup()
		var amb *tenant.AmbiguousEmailError
		if !errors.As(err, &amb) {
			t.Fatalf("lookup of an email two users hold = %v, want an *AmbiguousEmailError", err)
		}
		if diff := cmp.Diff(sortedIDs([]string{a.ID, b.ID}), sortedIDs(amb.IDs)); diff != "" {
			t.Errorf("ids named (-want +got):\n%s", diff)
		}
		if !strings.Contains(err.Error(), a.ID) || !strings.Contains(err.Error(), b.ID) {
			t.Errorf("the message %q does not name both ids", err)
		}
	}
	if u, err := tn.Lookup(ctx, "single@example.com"); err != nil || u == nil || u.ID != other.ID {
		t.Errorf("Lookup of an unambiguous email = %+v, %v", u, err)
	}
	// Each of the two is still reachable by id.
	for _, id := range []string{a.ID, b.ID} {
		if u, _, err := tn.Get(ctx, id, false); err != nil || u.ID != id {
			t.Errorf("Get(%s) = %+v, %v", id, u, err)
		}
	}
}

// TestGetByID: a user absent from the snapshot is read by id (and then kept); a fresh Get always
// reads; a user the API does not have is ErrUserGone, never a guess from the snapshot.
func TestGetByID(t *testing.T) {
	sim, api := newSim(t)
	ctx := ctxT(t)
	clk := newClock()
	tn, g := newTenant(api, tenant.Options{MaxAge: time.Hour, Now: clk.Now})
	if _, err := tn.Lookup(ctx, "nobody@example.com"); err != nil {
		t.Fatal(err)
	}
	fetched := tn.FetchedAt()
	if !fetched.Equal(clk.Now()) {
		t.Errorf("FetchedAt = %s, want the clock's %s", fetched, clk.Now())
	}

	// Created after the snapshot was read.
	late, err := sim.AddUser(simulator.UserSeed{Email: "late@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := tn.Lookup(ctx, "late@example.com"); u != nil {
		t.Fatal("the snapshot was read before the user existed")
	}
	clk.Advance(time.Minute)
	sim.ResetStats()
	u, at, err := tn.Get(ctx, late.ID, false)
	if err != nil || u.ID != late.ID {
		t.Fatalf("Get of a user missing from the snapshot = %+v, %v", u, err)
	}
	if !at.Equal(clk.Now()) {
		t.Errorf("read at %s, want the time of the GET %s", at, clk.Now())
	}
	if n := sim.Stats().Count(cipherscale.RouteGetUser); n != 1 {
		t.Errorf("%d GETs by id, want 1", n)
	}
	// Now in the snapshot: no second GET, and the time is the snapshot's.
	if _, at, err := tn.Get(ctx, late.ID, false); err != nil || !at.Equal(fetched) {
		t.Errorf("second Get = %s, %v; want the snapshot's time %s", at, err, fetched)
	}
	if n := sim.Stats().Count(cipherscale.RouteGetUser); n != 1 {
		t.Errorf("%d GETs by id after the second Get, want 1", n)
	}

	// Deleted behind the snapshot's back: the snapshot still has it, a fresh Get does not.
	if err := api.DeleteUser(ctx, late.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tn.Get(ctx, late.ID, false); err != nil {
		t.Errorf("Get from the snapshot = %v; the snapshot is a hint and still holds the user", err)
	}
	if _, _, err := tn.Get(ctx, late.ID, true); !errors.Is(err, tenant.ErrUserGone) {
		t.Errorf("fresh Get of a deleted user = %v, want ErrUserGone", err)
	}
	if u, _ := tn.Lookup(ctx, "late@example.com"); u != nil {
		t.Error("a user the API says is gone stays in the snapshot")
	}
	if n := g.lists.Load(); n != 1 {
		t.Errorf("%d list reads, want 1: reads by id never re-read the tenant", n)
	}

	// RefreshIfOlder reads only when the snapshot started before the time given.
	if err := tn.RefreshIfOlder(ctx, fetched); err != nil || g.lists.Load() != 1 {
		t.Errorf("RefreshIfOlder(the snapshot's own time) = %v with %d reads, want no read", err, g.lists.Load())
	}
	if err := tn.RefreshIfOlder(ctx, clk.Now()); err != nil || g.lists.Load() != 2 {
		t.Errorf("RefreshIfOlder(later) = %v with %d reads, want one more read", err, g.lists.Load())
	}
}

// partialAPI answers a create with the users of its first half and an error, as the client does
// when a later batch of the call is refused or its outcome stays unknown.
type partialAPI struct {
	cipherscale.API
	sim *simulator.Server
}

func (p *partialAPI) CreateUsers(ctx context.Context, users []cipherscale.NewUser) ([]cipherscale.User, error) {
	half := len(users) / 2
	created, err := p.API.CreateUsers(ctx, users[:half])
	if err != nil {
		return created, err
	}
	return created, &cipherscale.APIError{Status: 503, Method: "POST", Route: cipherscale.RouteCreateUsers, Message: "unavailable"}
}

// TestFailedBatchKeepsCreatedUsers: the users a failed create call did create reach their
// callers; only the others get the error.
func TestFailedBatchKeepsCreatedUsers(t *testing.T) {
	sim, api := newSim(t)
	ctx := ctxT(t)
	tn := tenant.New(&partialAPI{API: api, sim: sim}, tenant.Options{MaxAge: time.Hour, BatchWindow: 100 * time.Millisecond})
	var items []cipherscale.NewUser
	for i := range 10 {
		items = append(items, cipherscale.NewUser{Email: fmt.Sprintf("part%02d@example.com", i), Groups: []string{}})
	}
	got, errs := createAll(t, tn, items)
	created, failed := 0, 0
	for i, it := range items {
		live, inTenant := sim.UserByEmail(it.Email)
		switch {
		case inTenant:
			created++
			if errs[i] != nil || got[i] == nil || got[i].ID != live.ID {
				t.Errorf("%s was created, but its caller got %+v, %v", it.Email, got[i], errs[i])
			}
			if u, err := tn.Lookup(ctx, it.Email); err != nil || u == nil || u.ID != live.ID {
				t.Errorf("the snapshot lost the created %s: %+v, %v", it.Email, u, err)
			}
		default:
			failed++
			if errs[i] == nil {
				t.Errorf("%s was not created, but its caller got no error", it.Email)
			}
		}
	}
	if created == 0 || failed == 0 {
		t.Fatalf("%d created and %d failed: the fake did not fail part way", created, failed)
	}
}

// TestGroupRefused: an add to an unknown group, for a user who exists, marks the group refused
// for one MaxAge; a successful add clears the mark and makes the group seen (GroupSeen).
func TestGroupRefused(t *testing.T) {
	sim, api := newSim(t)
	ctx := ctxT(t)
	clk := newClock()
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Minute, Now: clk.Now})
	u, err := sim.AddUser(simulator.UserSeed{Email: "member@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "00000000-0000-4000-8000-0000000000aa"
	if err := tn.AddToGroups(ctx, u.ID, []string{unknown}); !cipherscale.IsNotFound(err) || errors.Is(err, tenant.ErrUserGone) {
		t.Fatalf("adding to an unknown group = %v, want a 404 that is not ErrUserGone", err)
	}
	if !tn.GroupRefused(unknown) {
		t.Error("the unknown group is not marked refused")
	}
	clk.Advance(2 * time.Minute)
	if tn.GroupRefused(unknown) {
		t.Error("the mark outlived MaxAge: the group would never be tried again")
	}
	g, err := sim.AddGroup(simulator.GroupSeed{Name: "real", Roles: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if tn.GroupSeen(g.ID) || tn.GroupSeen(unknown) {
		t.Error("a group neither reported on a user nor accepted in an add counts as seen")
	}
	if err := tn.AddToGroups(ctx, u.ID, []string{g.ID}); err != nil || tn.GroupRefused(g.ID) {
		t.Errorf("a known group: %v, refused %t", err, tn.GroupRefused(g.ID))
	}
	if !tn.GroupSeen(g.ID) {
		t.Error("a group the API accepted in an add does not count as seen")
	}
}
