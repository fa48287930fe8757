package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestLookupSharesOneRefresh: concurrent lookups on a stale snapshot read the tenant once; within
// MaxAge they read nothing; after MaxAge one of them reads it again.
func TestLookupSharesOneRefresh(t *testing.T) {
	const users, callers = 250, 50
	sim, api := newSim(t)
	if err := sim.SeedUsers(users, "user%d@example.com"); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	tn, g := newTenant(api, tenant.Options{MaxAge: 10 * time.Minute, Now: clk.Now})
	ctx := ctxT(t)
	if err := tn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute) // the snapshot is now stale

	round := func(t *testing.T, wantRefresh bool) {
		t.Helper()
		sim.ResetStats()
		var h *hold
		if wantRefresh {
			// Hold the shared read until every caller has joined it, so that the count below
			// does not depend on how the goroutines happen to be scheduled.
			h = g.HoldNextList(t, true)
		}
		var wg sync.WaitGroup
		errs := make([]error, callers)
		got := make([]*cipherscale.User, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				email := fmt.Sprintf("User%d@Example.com", i*5+1) // mixed case: matched case-insensitively
				got[i], errs[i] = tn.Lookup(ctx, email)
			}()
		}
		if wantRefresh {
			h.Reached(t)
			waitReadWaiters(t, "Lookup", callers)
			h.Release()
		}
		wg.Wait()
		for i := range callers {
			want := fmt.Sprintf("user%d@example.com", i*5+1)
			if errs[i] != nil {
				t.Fatalf("Lookup %d: %v", i, errs[i])
			}
			if got[i] == nil || got[i].Email != want {
				t.Fatalf("Lookup %d = %+v, want the user %s", i, got[i], want)
			}
		}
	}

	round(t, true)
	if n := listRequests(sim); n != 3 {
		t.Errorf("a stale snapshot of %d users: %d list requests, want 3 (one refresh of 3 pages)", users, n)
	}
	if tn.Len() != users {
		t.Errorf("Len() = %d, want %d", tn.Len(), users)
	}

	clk.Advance(9 * time.Minute)
	round(t, false)
	if n := listRequests(sim); n != 0 {
		t.Errorf("within MaxAge: %d list requests, want 0", n)
	}

	clk.Advance(time.Minute) // exactly MaxAge since the last refresh started
	round(t, true)
	if n := listRequests(sim); n != 3 {
		t.Errorf("after MaxAge: %d list requests, want 3 (one refresh)", n)
	}
}

// instantAPI answers ListUsers at once, without HTTP, and counts the calls.
type instantAPI struct {
	cipherscale.API // nil: only ListUsers is called
	lists           atomic.Int32
}

func (a *instantAPI) ListUsers(context.Context) ([]cipherscale.User, error) {
	a.lists.Add(1)
	return []cipherscale.User{{ID: "u1", Email: "user1@example.com", Status: cipherscale.StatusActive}}, nil
}

// TestStaleLookupsNeverReadTwice: callers that all found the snapshot stale share one read even
// when some of them reach the refresh only after it finished. With a read that takes no time,
// the window between a caller's freshness check and its joining the shared read is wide enough
// to be hit within a few hundred rounds; each hit is a second full read of the tenant (100 page
// requests for a tenant of 10 000 users).
func TestStaleLookupsNeverReadTwice(t *testing.T) {
	const rounds, callers = 2000, 50
	clk := newClock()
	api := &instantAPI{}
	tn := tenant.New(api, tenant.Options{MaxAge: time.Minute, Now: clk.Now})
	ctx := ctxT(t)
	extra := 0
	for range rounds {
		clk.Advance(time.Hour) // stale; the clock then stands still, so the new snapshot is fresh
		before := api.lists.Load()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := tn.Lookup(ctx, "user1@example.com"); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := api.lists.Load() - before; n != 1 {
			extra++
		}
	}
	if extra > 0 {
		t.Errorf("in %d of %d rounds, %d lookups of one stale snapshot read the tenant more than once", extra, rounds, callers)
	}
}

// TestWritesUpdateSnapshot: after each write, Lookup returns the new state without reading the
// tenant again, and that state is the simulator's.
func TestWritesUpdateSnapshot(t *testing.T) {
	sim, api := newSim(t)
	r1, _ := sim.AddRole(simulator.RoleSeed{Name: "Admin", Type: cipherscale.RoleTypeAdmin})
	r2, _ := sim.AddRole(simulator.RoleSeed{Name: "Basic", Type: cipherscale.RoleTypeBasic})
	g1, _ := sim.AddGroup(simulator.GroupSeed{Name: "Engineering"})
	g2, _ := sim.AddGroup(simulator.GroupSeed{Name: "Support"})
	const email = "jane.smith@company.com"
	u, err := sim.AddUser(simulator.UserSeed{Email: email, Status: cipherscale.StatusActive,
		FirstName: "Jane", LastName: "Smith", Roles: []string{r1.ID}, Groups: []string{g1.ID}})
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour})
	ctx := ctxT(t)
	if got, err := tn.Lookup(ctx, email); err != nil || got == nil {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	sim.ResetStats()

	// view is what the operator checks of a user: the same from the snapshot and from the tenant.
	type view struct {
		First, Last, Image string
		Status             cipherscale.Status
		Roles, Groups      []string
	}
	viewOf := func(u cipherscale.User) view {
		return view{u.FirstName, u.LastName, u.Image, u.Status.Normalized(), sortedIDs(u.RoleIDs()), sortedIDs(u.GroupIDs())}
	}
	check := func(step string, want view) {
		t.Helper()
		got, err := tn.Lookup(ctx, strings.ToUpper(email))
		if err != nil || got == nil {
			t.Fatalf("%s: Lookup = %v, %v", step, got, err)
		}
		if diff := cmp.Diff(want, viewOf(*got)); diff != "" {
			t.Errorf("%s: snapshot mismatch (-want +got):\n%s", step, diff)
		}
		live, _ := sim.UserByID(u.ID)
		if diff := cmp.Diff(want, viewOf(live)); diff != "" {
			t.Errorf("%s: simulator mismatch (-want +got):\n%s", step, diff)
		}
	}
	want := view{"Jane", "Smith", "", cipherscale.StatusActive, []string{r1.ID}, []string{g1.ID}}

	first, img := "Janet", "https://example.com/janet.png"
	if err := tn.UpdateProfile(ctx, u.ID, cipherscale.ProfileUpdate{FirstName: &first, Image: &img}); err != nil {
		t.Fatal(err)
	}
	want.First, want.Image = first, img
	check("UpdateProfile", want)

	if err := tn.PatchRoles(ctx, u.ID, cipherscale.RolesPatch{AddedRoles: []string{r2.ID}, RemovedRoles: []string{r1.ID}}); err != nil {
		t.Fatal(err)
	}
	want.Roles = []string{r2.ID}
	check("PatchRoles", want)

	if err := tn.AddToGroups(ctx, u.ID, []string{g2.ID, g1.ID}); err != nil {
		t.Fatal(err)
	}
	want.Groups = sortedIDs([]string{g1.ID, g2.ID})
	check("AddToGroups", want)

	if err := tn.RemoveFromGroup(ctx, u.ID, g1.ID); err != nil {
		t.Fatal(err)
	}
	want.Groups = []string{g2.ID}
	check("RemoveFromGroup", want)

	if err := tn.Deactivate(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	want.Status = cipherscale.StatusInactive
	check("Deactivate", want)

	if err := tn.Reactivate(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	want.Status = cipherscale.StatusActive
	check("Reactivate", want)

	if got, err := tn.UsersInGroup(ctx, strings.ToUpper(g2.ID)); err != nil || len(got) != 1 || got[0].ID != u.ID {
		t.Errorf("UsersInGroup(g2) = %+v, %v; want the user", got, err)
	}
	if got, err := tn.LookupMany(ctx, []string{strings.ToUpper(email), "nobody@example.com"}); err != nil || len(got) != 1 || got[email] == nil {
		t.Errorf("LookupMany = %+v, %v; want only the user, keyed by normalized email", got, err)
	}

	if err := tn.Delete(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := tn.Lookup(ctx, email); err != nil || got != nil {
		t.Errorf("after Delete: Lookup = %+v, %v; want nil, nil", got, err)
	}
	if _, ok := sim.UserByID(u.ID); ok {
		t.Error("after Delete: the user is still in the tenant")
	}
	// Deleting a user already gone counts as done.
	if err := tn.Delete(ctx, u.ID); err != nil {
		t.Errorf("deleting a user already gone: %v", err)
	}

	if n := listRequests(sim); n != 0 {
		t.Errorf("the writes caused %d list requests, want 0", n)
	}
}

// TestLookupReturnsCopies: a caller changing what Lookup returned does not change the snapshot.
func TestLookupReturnsCopies(t *testing.T) {
	sim, api := newSim(t)
	g1, _ := sim.AddGroup(simulator.GroupSeed{Name: "Engineering"})
	if _, err := sim.AddUser(simulator.UserSeed{Email: "a@example.com", FirstName: "A", Groups: []string{g1.ID}}); err != nil {
		t.Fatal(err)
	}
	tn, _ := newTenant(api, tenant.Options{})
	ctx := ctxT(t)
	u, err := tn.Lookup(ctx, "a@example.com")
	if err != nil || u == nil {
		t.Fatalf("Lookup = %v, %v", u, err)
	}
	u.FirstName = "changed"
	u.Groups[0].ID = "changed"
	again, _ := tn.Lookup(ctx, "a@example.com")
	if again.FirstName != "A" || again.Groups[0].ID != g1.ID {
		t.Errorf("the snapshot changed with the copy a caller holds: %+v", again)
	}
}

// TestRefreshDoesNotUndoWrites: a refresh that read the tenant before a write does not install
// the old state over it.
func TestRefreshDoesNotUndoWrites(t *testing.T) {
	sim, api := newSim(t)
	r1, _ := sim.AddRole(simulator.RoleSeed{Name: "Admin", Type: cipherscale.RoleTypeAdmin})
	g1, _ := sim.AddGroup(simulator.GroupSeed{Name: "Engineering"})
	alice, _ := sim.AddUser(simulator.UserSeed{Email: "alice@example.com", Status: cipherscale.StatusActive, FirstName: "Alice"})
	bob, _ := sim.AddUser(simulator.UserSeed{Email: "bob@example.com", Status: cipherscale.StatusActive})
	carol, _ := sim.AddUser(simulator.UserSeed{Email: "carol@example.com", Status: cipherscale.StatusActive})
	dave, _ := sim.AddUser(simulator.UserSeed{Email: "dave@example.com", Status: cipherscale.StatusActive})

	tn, g := newTenant(api, tenant.Options{MaxAge: time.Hour})
	ctx := ctxT(t)
	if err := tn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	// A refresh reads the tenant, then is held before it installs what it read.
	h := g.HoldNextList(t, false)
	tn.Invalidate()
	done := make(chan error, 1)
	go func() {
		_, err := tn.Lookup(ctx, "alice@example.com")
		done <- err
	}()
	h.Reached(t)

	// Writes made meanwhile: one with a response body, two without, one delete.
	first := "Alicia"
	if err := tn.UpdateProfile(ctx, alice.ID, cipherscale.ProfileUpdate{FirstName: &first}); err != nil {
		t.Fatal(err)
	}
	if err := tn.PatchRoles(ctx, bob.ID, cipherscale.RolesPatch{AddedRoles: []string{r1.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := tn.AddToGroups(ctx, carol.ID, []string{g1.ID}); err != nil {
		t.Fatal(err)
	}
	if err := tn.Delete(ctx, dave.ID); err != nil {
		t.Fatal(err)
	}
	// And a user created meanwhile.
	created, err := tn.Create(ctx, cipherscale.NewUser{Email: "erin@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	h.Release()
	if err := <-done; err != nil {
		t.Fatalf("the held lookup: %v", err)
	}
	lists := g.lists.Load()

	look := func(email string) *cipherscale.User {
		t.Helper()
		u, err := tn.Lookup(ctx, email)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", email, err)
		}
		return u
	}
	if u := look("alice@example.com"); u == nil || u.FirstName != first {
		t.Errorf("the refresh undid the profile write: %+v", u)
	}
	if u := look("bob@example.com"); u == nil || !cmp.Equal(sortedIDs(u.RoleIDs()), []string{r1.ID}) {
		t.Errorf("the refresh undid the role write: %+v", u)
	}
	if u := look("carol@example.com"); u == nil || !cmp.Equal(sortedIDs(u.GroupIDs()), []string{g1.ID}) {
		t.Errorf("the refresh undid the group write: %+v", u)
	}
	if u := look("dave@example.com"); u != nil {
		t.Errorf("the refresh brought back a deleted user: %+v", u)
	}
	if u := look("erin@example.com"); u == nil || u.ID != created.ID {
		t.Errorf("the refresh lost a created user: %+v", u)
	}
	if n := g.lists.Load(); n != lists {
		t.Errorf("the lookups after the refresh read the tenant %d more times, want 0", n-lists)
	}

	// The local copies do not stick: the next refresh shows what the tenant holds.
	other := "Changed-By-Hand"
	if _, err := api.UpdateProfile(ctx, alice.ID, cipherscale.ProfileUpdate{FirstName: &other}); err != nil {
		t.Fatal(err)
	}
	if err := tn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if u := look("alice@example.com"); u == nil || u.FirstName != other {
		t.Errorf("after a later refresh: %+v, want the tenant's first name %q", u, other)
	}
}

// TestWriteErrors: a 404 because a role is unknown keeps the user; a 404 because the user is gone
// drops the user and says so with ErrUserGone.
func TestWriteErrors(t *testing.T) {
	sim, api := newSim(t)
	g1, _ := sim.AddGroup(simulator.GroupSeed{Name: "Engineering"})
	tn, g := newTenant(api, tenant.Options{MaxAge: time.Hour})
	ctx := ctxT(t)

	t.Run("unknown role", func(t *testing.T) {
		u, _ := sim.AddUser(simulator.UserSeed{Email: "role-404@example.com", Status: cipherscale.StatusActive})
		tn.Invalidate()
		if got, err := tn.Lookup(ctx, u.Email); err != nil || got == nil {
			t.Fatalf("Lookup = %v, %v", got, err)
		}
		sim.ResetStats()
		lists := g.lists.Load()
		err := tn.PatchRoles(ctx, u.ID, cipherscale.RolesPatch{AddedRoles: []string{"00000000-0000-4000-8000-000000000000"}})
		if !cipherscale.IsNotFound(err) {
			t.Fatalf("PatchRoles with an unknown role = %v, want a 404", err)
		}
		if errors.Is(err, tenant.ErrUserGone) {
			t.Errorf("PatchRoles with an unknown role says the user is gone: %v", err)
		}
		if got, err := tn.Lookup(ctx, u.Email); err != nil || got == nil || len(got.Roles) != 0 {
			t.Errorf("after the refused patch: Lookup = %+v, %v; want the user, unchanged", got, err)
		}
		if n := sim.Stats().Count(cipherscale.RouteGetUser); n != 1 {
			t.Errorf("%d reads of the user, want 1 (to tell a gone user from an unknown role)", n)
		}
		if g.lists.Load() != lists {
			t.Error("the refused patch caused a refresh")
		}
	})

	t.Run("unknown group", func(t *testing.T) {
		u, _ := sim.AddUser(simulator.UserSeed{Email: "group-404@example.com", Status: cipherscale.StatusActive})
		tn.Invalidate()
		if got, err := tn.Lookup(ctx, u.Email); err != nil || got == nil {
			t.Fatalf("Lookup = %v, %v", got, err)
		}
		err := tn.AddToGroups(ctx, u.ID, []string{"00000000-0000-4000-8000-000000000000"})
		if !cipherscale.IsNotFound(err) || errors.Is(err, tenant.ErrUserGone) {
			t.Fatalf("AddToGroups with an unknown group = %v, want a 404 that is not ErrUserGone", err)
		}
		if got, _ := tn.Lookup(ctx, u.Email); got == nil || len(got.Groups) != 0 {
			t.Errorf("after the refused add: Lookup = %+v; want the user, unchanged", got)
		}
	})

	writes := []struct {
		name  string
		write func(id string) error
	}{
		{"UpdateProfile", func(id string) error {
			s := "x"
			return tn.UpdateProfile(ctx, id, cipherscale.ProfileUpdate{FirstName: &s})
		}},
		{"PatchRoles", func(id string) error { return tn.PatchRoles(ctx, id, cipherscale.RolesPatch{}) }},
		{"AddToGroups", func(id string) error { return tn.AddToGroups(ctx, id, []string{g1.ID}) }},
		{"RemoveFromGroup", func(id string) error { return tn.RemoveFromGroup(ctx, id, g1.ID) }},
		{"Deactivate", func(id string) error { return tn.Deactivate(ctx, id) }},
		{"Reactivate", func(id string) error { return tn.Reactivate(ctx, id) }},
		{"ResendInvitation", func(id string) error { return tn.ResendInvitation(ctx, id) }},
	}
	for _, w := range writes {
		t.Run("user deleted by hand/"+w.name, func(t *testing.T) {
			email := strings.ToLower(w.name) + "@example.com"
			u, err := sim.AddUser(simulator.UserSeed{Email: email})
			if err != nil {
				t.Fatal(err)
			}
			tn.Invalidate()
			if got, err := tn.Lookup(ctx, email); err != nil || got == nil {
				t.Fatalf("Lookup = %v, %v", got, err)
			}
			// Someone deletes the user in the tenant, not through the operator.
			if err := api.DeleteUser(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
			lists := g.lists.Load()
			err = w.write(u.ID)
			if !errors.Is(err, tenant.ErrUserGone) {
				t.Fatalf("%s on a user deleted by hand = %v, want ErrUserGone", w.name, err)
			}
			if !cipherscale.IsNotFound(err) {
				t.Errorf("%s: %v does not carry the API's 404", w.name, err)
			}
			if got, err := tn.Lookup(ctx, email); err != nil || got != nil {
				t.Errorf("after ErrUserGone: Lookup = %+v, %v; want nil, nil", got, err)
			}
			if g.lists.Load() != lists {
				t.Error("dropping the user caused a refresh")
			}
		})
	}
}

// TestCreateAsync: queued creates return at once and gather in one request although their
// callers queue them one after another; until its answer arrives an email is Creating, and the
// answer is in the snapshot before its callback runs.
func TestCreateAsync(t *testing.T) {
	n := cipherscale.MaxCreateBatch
	sim, api := newSim(t)
	// A window longer than the test: only a full batch sends the request.
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: time.Hour})
	ctx := ctxT(t)

	type answer struct {
		user     *cipherscale.User
		err      error
		inSnap   bool
		creating bool
	}
	answers := make([]chan answer, n)
	for i := range n {
		email := fmt.Sprintf("async%03d@example.com", i)
		answers[i] = make(chan answer, 1)
		tn.CreateAsync(cipherscale.NewUser{Email: email}, func(u *cipherscale.User, err error) {
			found, _ := tn.Lookup(context.Background(), email)
			answers[i] <- answer{user: u, err: err, inSnap: found != nil && u != nil && found.ID == u.ID, creating: tn.Creating(email)}
		})
		if i < n-1 && !tn.Creating(strings.ToUpper(email)) {
			t.Fatalf("%s is not Creating after CreateAsync", email)
		}
	}
	for i := range n {
		select {
		case a := <-answers[i]:
			if a.err != nil || a.user == nil {
				t.Fatalf("create %d: %+v, %v", i, a.user, a.err)
			}
			if !a.inSnap {
				t.Errorf("create %d: the user was not in the snapshot when its callback ran", i)
			}
			if a.creating {
				t.Errorf("create %d: still Creating when its callback ran", i)
			}
		case <-ctx.Done():
			t.Fatalf("create %d: no answer", i)
		}
	}
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 1 {
		t.Errorf("%d create requests, want 1", posts)
	}
	if users := len(sim.Users()); users != n {
		t.Errorf("%d users in the tenant, want %d", users, n)
	}
}

// TestCreateAsyncAfter: a create whose step before the send fails is answered with that error
// and sends nothing; the creates whose step waits (a save) are Creating meanwhile, their callers
// never held, and go in one request once the step is done. The steps run one after another.
func TestCreateAsyncAfter(t *testing.T) {
	sim, api := newSim(t)
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: 20 * time.Millisecond})
	ctx := ctxT(t)

	refused := errors.New("the record could not be saved")
	failed := make(chan error, 1)
	tn.CreateAsyncAfter(cipherscale.NewUser{Email: "unsaved@example.com"}, func() error { return refused },
		func(u *cipherscale.User, err error) { failed <- err })
	select {
	case err := <-failed:
		if !errors.Is(err, refused) {
			t.Fatalf("create after a failed step: %v, want its error", err)
		}
	case <-ctx.Done():
		t.Fatal("create after a failed step: no answer")
	}
	if tn.Creating("unsaved@example.com") {
		t.Error("unsaved@example.com still Creating after its answer")
	}

	const n = 5
	release := make(chan struct{})
	var running, most atomic.Int32
	step := func() error {
		if r := running.Add(1); r > most.Load() {
			most.Store(r)
		}
		defer running.Add(-1)
		<-release
		return nil
	}
	answers := make(chan error, n)
	for i := range n {
		email := fmt.Sprintf("after%d@example.com", i)
		tn.CreateAsyncAfter(cipherscale.NewUser{Email: email}, step, func(u *cipherscale.User, err error) {
			if err == nil && u == nil {
				err = errors.New("no user")
			}
			answers <- err
		})
		if !tn.Creating(email) {
			t.Fatalf("%s is not Creating while its step waits", email)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 0 {
		t.Fatalf("%d create requests before the steps were done, want 0", posts)
	}
	close(release)
	waitAnswers(ctx, t, answers, n)
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 1 {
		t.Errorf("%d create requests, want 1", posts)
	}
	if most.Load() != 1 {
		t.Errorf("%d steps ran at once, want 1", most.Load())
	}
	if users := len(sim.Users()); users != n {
		t.Errorf("%d users in the tenant, want %d (the failed one not sent)", users, n)
	}
}

// TestCreateAsyncAfterKeepsTheStream: creates asked for one after another, within the stream
// gap, share one request even when their before steps (saves, one after another) let them reach
// the batch further apart than the gap: a create arrives when it is asked for, and a partial
// batch waits for the creates still in their step.
func TestCreateAsyncAfterKeepsTheStream(t *testing.T) {
	sim, api := newSim(t)
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: 20 * time.Millisecond, BatchStreamGap: 300 * time.Millisecond})
	ctx := ctxT(t)
	const n = 4
	answers := make(chan error, n)
	for i := range n {
		tn.CreateAsyncAfter(cipherscale.NewUser{Email: fmt.Sprintf("stream%d@example.com", i)},
			func() error { time.Sleep(400 * time.Millisecond); return nil },
			func(u *cipherscale.User, err error) { answers <- err })
		time.Sleep(100 * time.Millisecond)
	}
	waitAnswers(ctx, t, answers, n)
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 1 {
		t.Errorf("%d create requests for %d creates asked for 100 ms apart, want 1", posts, n)
	}
}

// waitAnswers waits for n answers of queued creates, each without an error.
func waitAnswers(ctx context.Context, t *testing.T, answers <-chan error, n int) {
	t.Helper()
	for range n {
		select {
		case err := <-answers:
			if err != nil {
				t.Fatalf("create: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("create: no answer")
		}
	}
}

// TestCreateWaitsWhileObjectsWait: a partial batch also waits while the tenant's objects wait
// for a pass (their creates may be among them), though no call is in progress, and goes once
// none waits.
func TestCreateWaitsWhileObjectsWait(t *testing.T) {
	sim, api := newSim(t)
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: 20 * time.Millisecond, MaxPasses: 1})
	ctx := ctxT(t)
	first, ok := tn.Enter("first", func() {})
	if !ok {
		t.Fatal("the first Enter was refused")
	}
	if _, ok := tn.Enter("second", func() {}); ok {
		t.Fatal("a second Enter got in past MaxPasses 1")
	}
	answered := make(chan error, 1)
	tn.CreateAsync(cipherscale.NewUser{Email: "waits@example.com"}, func(u *cipherscale.User, err error) { answered <- err })
	time.Sleep(300 * time.Millisecond)
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 0 {
		t.Fatalf("%d create requests while an object waited for a pass, want 0", posts)
	}
	first.Release()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("create: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the create was not sent within 2 s of the last wait ending")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

// TestCreateWaitsWhileBusy: while another call of the tenant is in progress, a partial batch
// waits beyond its window for more creates; when that call ends it goes at once, not at the end
// of its longest wait (200 windows).
func TestCreateWaitsWhileBusy(t *testing.T) {
	const window = 100 * time.Millisecond
	sim, api := newSim(t)
	tn, gated := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: window})
	ctx := ctxT(t)

	held := gated.HoldNextList(t, true)
	listDone := make(chan error, 1)
	go func() { listDone <- tn.RefreshIfOlder(ctx, time.Now()) }()
	held.Reached(t)

	answered := make(chan time.Time, 2)
	queued := time.Now()
	for _, e := range []string{"busy1@example.com", "busy2@example.com"} {
		tn.CreateAsync(cipherscale.NewUser{Email: e}, func(u *cipherscale.User, err error) {
			if err != nil || u == nil {
				t.Errorf("create %s: %+v, %v", e, u, err)
			}
			answered <- time.Now()
		})
	}
	select {
	case <-answered:
		t.Fatal("the create was sent while another call was in progress, after one window")
	case <-time.After(3 * window):
	}
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 0 {
		t.Fatalf("%d create requests while another call was in progress, want 0", posts)
	}
	held.Release()
	if err := <-listDone; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if at := <-answered; at.Sub(queued) >= 40*window {
			t.Errorf("a create was answered %s after it was queued: it waited for its longest wait, not for the call in progress", at.Sub(queued))
		}
	}
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 1 {
		t.Errorf("%d create requests, want 1", posts)
	}
}

// TestBatchedCreates: concurrent creates share requests of at most 100 users.
func TestBatchedCreates(t *testing.T) {
	const n = 250
	sim, api := newSim(t)
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: 50 * time.Millisecond})
	ctx := ctxT(t)

	emails := make([]string, n)
	for i := range n {
		emails[i] = fmt.Sprintf("new%03d@example.com", i)
		if i%7 == 0 {
			emails[i] = strings.ToUpper(emails[i][:1]) + emails[i][1:]
		}
	}
	got := make([]*cipherscale.User, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = tn.Create(ctx, cipherscale.NewUser{Email: emails[i]})
		}()
	}
	close(start)
	wg.Wait()

	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Create(%s): %v", emails[i], errs[i])
		}
		if got[i] == nil || !strings.EqualFold(got[i].Email, emails[i]) {
			t.Fatalf("Create(%s) returned %+v, not the caller's user", emails[i], got[i])
		}
		if seen[got[i].ID] {
			t.Fatalf("two callers got the user %s", got[i].ID)
		}
		seen[got[i].ID] = true
		if inv := sim.InvitationsSent(emails[i]); inv != 1 {
			t.Errorf("%s: %d invitations, want 1", emails[i], inv)
		}
	}
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts != 3 {
		t.Errorf("%d create requests, want 3 (100 + 100 + 50)", posts)
	}
	if users := len(sim.Users()); users != n {
		t.Errorf("%d users in the tenant, want %d", users, n)
	}
	// Lookups find the created users, whatever the case of the email.
	for i := range 10 {
		if u, err := tn.Lookup(ctx, strings.ToUpper(emails[i])); err != nil || u == nil || u.ID != got[i].ID {
			t.Errorf("Lookup(%s) = %+v, %v; want the created user", emails[i], u, err)
		}
	}
}

// createAll runs one concurrent Create per email and returns each caller's result.
func createAll(t *testing.T, tn *tenant.Tenant, items []cipherscale.NewUser) ([]*cipherscale.User, []error) {
	t.Helper()
	ctx := ctxT(t)
	got := make([]*cipherscale.User, len(items))
	errs := make([]error, len(items))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = tn.Create(ctx, items[i])
		}()
	}
	close(start)
	wg.Wait()
	return got, errs
}

// TestRefusedBatch: a batch refused because of some of its items is split: those items' callers
// get the refusal, the others their users, and nobody is created twice.
func TestRefusedBatch(t *testing.T) {
	t.Run("emails that exist", func(t *testing.T) {
		sim, api := newSim(t)
		tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: 50 * time.Millisecond})
		taken := map[int]bool{3: true, 11: true}
		var items []cipherscale.NewUser
		for i := range 20 {
			email := fmt.Sprintf("batch%02d@example.com", i)
			if taken[i] {
				// Made by hand, with another case: emails are compared case-insensitively.
				if _, err := sim.AddUser(simulator.UserSeed{Email: strings.ToUpper(email)}); err != nil {
					t.Fatal(err)
				}
			}
			items = append(items, cipherscale.NewUser{Email: email, Groups: []string{}})
		}
		got, errs := createAll(t, tn, items)
		for i, it := range items {
			switch {
			case taken[i]:
				if !cipherscale.IsConflict(errs[i]) || got[i] != nil {
					t.Errorf("Create(%s) of an existing email = %+v, %v; want a 409", it.Email, got[i], errs[i])
				}
				var ae *cipherscale.APIError
				if errors.As(errs[i], &ae) && !cmp.Equal(ae.Emails, []string{it.Email}) {
					t.Errorf("the refusal of %s names %q, want only that caller's email", it.Email, ae.Emails)
				}
				if inv := sim.InvitationsSent(it.Email); inv != 0 {
					t.Errorf("%s: %d invitations, want 0", it.Email, inv)
				}
			default:
				if errs[i] != nil || got[i] == nil || got[i].Email != it.Email {
					t.Errorf("Create(%s) = %+v, %v; want the user", it.Email, got[i], errs[i])
				}
				if inv := sim.InvitationsSent(it.Email); inv != 1 {
					t.Errorf("%s: %d invitations, want 1", it.Email, inv)
				}
			}
		}
		if n := len(sim.Users()); n != 20 {
			t.Errorf("%d users in the tenant, want 20 (2 by hand + 18 created)", n)
		}
		stats := sim.Stats()
		if posts := stats.Count(cipherscale.RouteCreateUsers); posts < 2 || posts > 3 {
			t.Errorf("%d create requests, want 2 or 3", posts)
		}
		if c := stats.CountStatus(cipherscale.RouteCreateUsers, http.StatusConflict); c != 1 {
			t.Errorf("%d refused create requests, want 1", c)
		}
		// The 409 invalidated the snapshot: the next lookup finds the existing user to adopt.
		if u, err := tn.Lookup(ctxT(t), items[3].Email); err != nil || u == nil {
			t.Errorf("Lookup of the existing user after the 409 = %+v, %v; want the user", u, err)
		}
	})

	t.Run("unknown group", func(t *testing.T) {
		sim, api := newSim(t)
		g1, _ := sim.AddGroup(simulator.GroupSeed{Name: "Engineering"})
		tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: 50 * time.Millisecond})
		const bad = 7
		var items []cipherscale.NewUser
		for i := range 20 {
			groups := []string{g1.ID}
			if i == bad {
				groups = []string{g1.ID, "00000000-0000-4000-8000-000000000000"}
			}
			items = append(items, cipherscale.NewUser{Email: fmt.Sprintf("grp%02d@example.com", i), Groups: groups})
		}
		got, errs := createAll(t, tn, items)
		for i, it := range items {
			if i == bad {
				if !cipherscale.IsNotFound(errs[i]) || got[i] != nil {
					t.Errorf("Create(%s) naming an unknown group = %+v, %v; want a 404", it.Email, got[i], errs[i])
				}
				if _, ok := sim.UserByEmail(it.Email); ok {
					t.Errorf("%s was created despite the unknown group", it.Email)
				}
				continue
			}
			if errs[i] != nil || got[i] == nil || got[i].Email != it.Email {
				t.Errorf("Create(%s) = %+v, %v; want the user", it.Email, got[i], errs[i])
				continue
			}
			if !cmp.Equal(got[i].GroupIDs(), []string{g1.ID}) {
				t.Errorf("%s is in %q, want [%s]", it.Email, got[i].GroupIDs(), g1.ID)
			}
			if inv := sim.InvitationsSent(it.Email); inv != 1 {
				t.Errorf("%s: %d invitations, want 1", it.Email, inv)
			}
		}
		if n := len(sim.Users()); n != 19 {
			t.Errorf("%d users in the tenant, want 19", n)
		}
		if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts < 2 || posts > 3 {
			t.Errorf("%d create requests, want 2 or 3", posts)
		}
	})
}

// TestBatchWithOneEmailTwice: two callers creating the same email in one batch window must not
// make the batch fail for everybody else.
func TestBatchWithOneEmailTwice(t *testing.T) {
	sim, api := newSim(t)
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: 50 * time.Millisecond})
	var items []cipherscale.NewUser
	for i := range 10 {
		items = append(items, cipherscale.NewUser{Email: fmt.Sprintf("dup%02d@example.com", i)})
	}
	items = append(items, cipherscale.NewUser{Email: "DUP04@example.com"}) // the same as item 4
	got, errs := createAll(t, tn, items)
	for i := range 10 {
		if i == 4 {
			continue
		}
		if errs[i] != nil || got[i] == nil {
			t.Errorf("Create(%s) = %+v, %v; want the user: another caller's duplicate must not fail it", items[i].Email, got[i], errs[i])
		}
	}
	// The duplicated email: created once; each of its callers gets that user or a conflict.
	for _, i := range []int{4, 10} {
		if errs[i] != nil && !cipherscale.IsConflict(errs[i]) {
			t.Errorf("Create(%s) = %v, want the user or a 409", items[i].Email, errs[i])
		}
	}
	if errs[4] != nil && errs[10] != nil {
		t.Errorf("neither caller of the duplicated email got the user: %v / %v", errs[4], errs[10])
	}
	if inv := sim.InvitationsSent("dup04@example.com"); inv > 1 {
		t.Errorf("the duplicated email got %d invitations, want at most 1", inv)
	}
}

// TestSharedRateLimitPause: one 429 pauses every call of the client, lookups and writes alike.
func TestSharedRateLimitPause(t *testing.T) {
	obs := &throttleObserver{throttled: make(chan struct{})}
	sim, api := newSimObserved(t, obs)
	u, err := sim.AddUser(simulator.UserSeed{Email: "paused@example.com", Status: cipherscale.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteListUsers, Status: http.StatusTooManyRequests, RetryAfterSeconds: 1, Count: 1}})
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour})
	ctx := ctxT(t)

	start := time.Now()
	const callers = 10
	var wg sync.WaitGroup
	errs := make([]error, callers)
	took := make([]time.Duration, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = tn.Lookup(ctx, "paused@example.com")
			took[i] = time.Since(start)
		}()
	}
	// A write sent once the client has received the 429 waits for the same pause, though its own
	// route was never refused.
	select {
	case <-obs.throttled:
	case <-time.After(10 * time.Second):
		t.Fatal("the client never received the 429")
	}
	first := "Paused"
	writeErr := tn.UpdateProfile(ctx, u.ID, cipherscale.ProfileUpdate{FirstName: &first})
	writeTook := time.Since(start)
	wg.Wait()

	for i := range callers {
		if errs[i] != nil {
			t.Errorf("lookup %d: %v", i, errs[i])
		}
		if took[i] < 900*time.Millisecond {
			t.Errorf("lookup %d completed after %s, before the 1s pause was over", i, took[i])
		}
		if took[i] > 10*time.Second {
			t.Errorf("lookup %d took %s", i, took[i])
		}
	}
	if writeErr != nil {
		t.Errorf("the write during the pause: %v", writeErr)
	}
	if writeTook < 900*time.Millisecond {
		t.Errorf("the write completed after %s, before the pause was over", writeTook)
	}
	stats := sim.Stats()
	if n := stats.CountStatus(cipherscale.RouteListUsers, http.StatusTooManyRequests); n != 1 {
		t.Errorf("the simulator answered %d 429s, want exactly 1", n)
	}
	if n := stats.CountStatus(cipherscale.RouteUpdateProfile, http.StatusTooManyRequests); n != 0 {
		t.Errorf("the write was sent during the pause and refused %d times", n)
	}
}

// TestSharedUsers: SharedUsers reads nothing while the snapshot was never filled (a key check
// must not fill what objects act on); once it is, it answers from the snapshot while its read
// started at or after since, reads again otherwise, and returns copies.
func TestSharedUsers(t *testing.T) {
	clk := newClock()
	api := &instantAPI{}
	tn := tenant.New(api, tenant.Options{MaxAge: time.Hour, Now: clk.Now})
	ctx := ctxT(t)
	if _, _, ok, err := tn.SharedUsers(ctx, clk.Now(), false); ok || err != nil || api.lists.Load() != 0 {
		t.Fatalf("before any object read: ok %v, err %v, %d lists; want not ok, no read", ok, err, api.lists.Load())
	}
	first := clk.Now()
	if err := tn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	users, at, ok, err := tn.SharedUsers(ctx, first, false)
	if !ok || err != nil || len(users) != 1 || !at.Equal(first) || api.lists.Load() != 1 {
		t.Fatalf("since the objects' read: %d users read at %v, ok %v, err %v, %d lists; want the snapshot of %v, no read", len(users), at, ok, err, api.lists.Load(), first)
	}
	now := clk.Now()
	if _, at, _, err = tn.SharedUsers(ctx, now, false); err != nil || !at.Equal(now) || api.lists.Load() != 2 {
		t.Errorf("since now: read at %v, err %v, %d lists; want a new read at %v", at, err, api.lists.Load(), now)
	}
	users[0].Email = "changed@example.com"
	if again, _, _, _ := tn.SharedUsers(ctx, now, false); again[0].Email != "user1@example.com" {
		t.Errorf("SharedUsers returned the snapshot's own user, not a copy")
	}

	// A tenant that objects name fills the snapshot they will read, once for all.
	used := tenant.New(api, tenant.Options{MaxAge: time.Hour, Now: clk.Now})
	before := api.lists.Load()
	if users, at, ok, err := used.SharedUsers(ctx, now, true); !ok || err != nil || len(users) != 1 || !at.Equal(now) {
		t.Fatalf("used, never filled: %d users read at %v, ok %v, err %v; want the read it made", len(users), at, ok, err)
	}
	if _, err := used.Lookup(ctx, "user1@example.com"); err != nil || api.lists.Load() != before+1 {
		t.Errorf("an object's lookup after it: err %v, %d reads; want the snapshot it filled, 1 read", err, api.lists.Load()-before)
	}
}

// TestSharedUsersJoinsTheObjectsFirstRead: while the objects' first read of the tenant is in
// flight, the tenant object's pass waits for it and shares it, instead of reading the tenant
// whole a second time beside it.
func TestSharedUsersJoinsTheObjectsFirstRead(t *testing.T) {
	sim, api := newSim(t)
	if err := sim.SeedUsers(5, "user%d@example.com"); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	tn, g := newTenant(api, tenant.Options{MaxAge: 10 * time.Minute, Now: clk.Now})
	ctx := ctxT(t)
	h := g.HoldNextList(t, true)
	lookup := make(chan error, 1)
	go func() {
		_, err := tn.Lookup(ctx, "user1@example.com")
		lookup <- err
	}()
	h.Reached(t)
	shared := make(chan []cipherscale.User, 1)
	go func() {
		users, _, ok, err := tn.SharedUsers(ctx, clk.Now(), false)
		if !ok || err != nil {
			t.Errorf("SharedUsers during the objects' read: ok %v, err %v; want it to share that read", ok, err)
		}
		shared <- users
	}()
	waitReadWaiters(t, "SharedUsers", 1)
	h.Release()
	if err := <-lookup; err != nil {
		t.Fatal(err)
	}
	if users := <-shared; len(users) != 5 {
		t.Errorf("SharedUsers returned %d users, want the 5 of the shared read", len(users))
	}
	if n := g.lists.Load(); n != 1 {
		t.Errorf("%d reads of the tenant, want the objects' one, shared", n)
	}
}
