package cipherscale_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// The list is read page by page with offsets while other administrators delete and create users:
// the tests check that the reader returns every user that existed during the whole read, or an
// error, and never silently a short list.

// churn changes the tenant from the simulator's hook, before list pages are served.
type churn struct {
	sim *simulator.Server
	t   *testing.T

	mu      sync.Mutex
	rnd     *rand.Rand
	created int
	// deleted and createdIDs record what changed, so that "existed throughout" can be checked.
	deleted map[string]bool
	// change is called for each list request after the first page of a read (offset > 0).
	change func(c *churn, offset int)
}

func newChurn(t *testing.T, sim *simulator.Server, seed uint64, change func(c *churn, offset int)) *churn {
	c := &churn{sim: sim, t: t, rnd: rand.New(rand.NewPCG(seed, 1)), deleted: map[string]bool{}, change: change}
	sim.SetHook(func(route string, r *http.Request) {
		if route != cipherscale.RouteListUsers {
			return
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		if off == 0 {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.change(c, off)
	})
	t.Cleanup(func() { sim.SetHook(nil) })
	return c
}

// deleteBefore deletes a random user among the first n of the tenant (those already read).
func (c *churn) deleteBefore(n int) {
	users := c.sim.Users()
	if len(users) == 0 {
		return
	}
	u := users[c.rnd.IntN(min(n, len(users)))]
	if err := c.sim.DeleteUser(u.ID); err != nil {
		c.t.Errorf("deleting %s: %v", u.ID, err)
	}
	c.deleted[u.ID] = true
}

func (c *churn) create() {
	c.created++
	if _, err := c.sim.AddUser(simulator.UserSeed{Email: fmt.Sprintf("new%d@example.com", c.created)}); err != nil {
		c.t.Errorf("creating a user: %v", err)
	}
}

// expectComplete checks that got holds every user of before that was not deleted, once each.
func (c *churn) expectComplete(before, got []cipherscale.User) {
	c.t.Helper()
	seen := map[string]int{}
	for _, u := range got {
		seen[u.ID]++
	}
	missing := 0
	for _, u := range before {
		if !c.deleted[u.ID] && seen[u.ID] == 0 {
			missing++
		}
	}
	for id, n := range seen {
		if n > 1 {
			c.t.Errorf("user %s returned %d times", id, n)
		}
	}
	if missing > 0 {
		c.t.Errorf("%d users that existed during the whole read are missing from the %d returned", missing, len(got))
	}
}

func seeded(t *testing.T, n int) (*simulator.Server, *cipherscale.Client, []cipherscale.User) {
	t.Helper()
	sim, c := newSim(t)
	if err := sim.SeedUsers(n, "user%04d@example.com"); err != nil {
		t.Fatal(err)
	}
	return sim, c, sim.Users()
}

func TestListShiftedByDeletes(t *testing.T) {
	t.Run("deletes during the first read only: read again, complete", func(t *testing.T) {
		sim, c, before := seeded(t, 450)
		reads := 0
		ch := newChurn(t, sim, 1, func(c *churn, offset int) {
			if reads < 2 { // the second page of the first two reads
				c.deleteBefore(offset)
				reads++
			}
		})
		got, err := c.ListUsers(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		ch.expectComplete(before, got)
		if len(got) != 450-2 {
			t.Errorf("%d users, want %d", len(got), 450-2)
		}
		// Two reads cut at their second page, then a full read of 5 pages.
		if n := sim.Stats().Count(cipherscale.RouteListUsers); n != 2*2+5 {
			t.Errorf("%d list requests, want 9", n)
		}
	})
	t.Run("the boundary user deleted", func(t *testing.T) {
		sim, c, before := seeded(t, 250)
		done := false
		ch := newChurn(t, sim, 2, func(c *churn, offset int) {
			if !done {
				// The user the page must start with: every later user shifts by one.
				id := c.sim.Users()[offset].ID
				_ = c.sim.DeleteUser(id)
				c.deleted[id] = true
				done = true
			}
		})
		got, err := c.ListUsers(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		ch.expectComplete(before, got)
	})
	t.Run("deletes on every page: an error after bounded reads, never a short list", func(t *testing.T) {
		sim, c, _ := seeded(t, 450)
		newChurn(t, sim, 3, func(c *churn, offset int) { c.deleteBefore(offset) })
		got, err := c.ListUsers(ctxT(t))
		if !errors.Is(err, cipherscale.ErrListChanged) || got != nil {
			t.Fatalf("%d users, err %v; want ErrListChanged", len(got), err)
		}
		// 4 reads, each cut at its second page.
		if n := sim.Stats().Count(cipherscale.RouteListUsers); n != 8 {
			t.Errorf("%d list requests, want 8 (4 reads of 2 pages)", n)
		}
		if cipherscale.IsRetryable(err) {
			t.Errorf("a changing list is reported as an API failure: %v", err)
		}
	})
}

func TestListShiftedByCreates(t *testing.T) {
	sim, c, before := seeded(t, 350)
	ch := newChurn(t, sim, 4, func(c *churn, _ int) { c.create() })
	got, err := c.ListUsers(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ch.expectComplete(before, got)
	// New users go to the end of the list: the read sees each one created before its last page.
	if len(got) < 350 {
		t.Errorf("%d users", len(got))
	}
}

// TestListUnderRandomChurn reads the list many times while users are deleted and created at
// random between pages: each read is complete or an error.
func TestListUnderRandomChurn(t *testing.T) {
	complete, failed := 0, 0
	for seed := range uint64(40) {
		sim, c, before := seeded(t, 320)
		ch := newChurn(t, sim, seed, func(c *churn, offset int) {
			switch c.rnd.IntN(4) {
			case 0:
				c.deleteBefore(offset)
			case 1:
				c.deleteBefore(len(c.sim.Users()))
			case 2:
				c.create()
			}
		})
		got, err := c.ListUsers(ctxT(t))
		if err != nil {
			if !errors.Is(err, cipherscale.ErrListChanged) {
				t.Fatalf("seed %d: %v", seed, err)
			}
			failed++
			continue
		}
		complete++
		ch.expectComplete(before, got)
	}
	t.Logf("40 reads under churn: %d complete, %d refused after %d attempts each", complete, failed, 4)
	if complete == 0 {
		t.Error("no read completed")
	}
}

// TestListWithoutChurnCostsNoMore: an idle tenant of N users is read in 1+ceil((N-100)/99) pages.
func TestListWithoutChurnCostsNoMore(t *testing.T) {
	for _, tt := range []struct{ n, pages int }{{0, 1}, {1, 1}, {100, 1}, {101, 2}, {199, 2}, {200, 3}, {300, 4}, {1000, 11}} {
		sim, c, _ := seeded(t, tt.n)
		got, err := c.ListUsers(ctxT(t))
		if err != nil || len(got) != tt.n {
			t.Fatalf("N=%d: %d users, %v", tt.n, len(got), err)
		}
		if n := sim.Stats().Count(cipherscale.RouteListUsers); n != tt.pages {
			t.Errorf("N=%d: %d list requests, want %d", tt.n, n, tt.pages)
		}
	}
}

func TestListProgressCountsEveryUserOnce(t *testing.T) {
	_, c, _ := seeded(t, 250)
	var calls [][2]int
	got, err := c.ListUsersProgress(ctxT(t), func(read, total int) { calls = append(calls, [2]int{read, total}) })
	if err != nil || len(got) != 250 {
		t.Fatalf("%d users, %v", len(got), err)
	}
	// Pages overlap by one user, which is counted once: 100, 199, 250.
	want := [][2]int{{100, 250}, {199, 250}, {250, 250}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("progress %v, want %v", calls, want)
	}
}
