package tenant_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestCreatesAtArrivalPace: creates that arrive one after another (each after the one before
// was answered, as objects applied one file at a time) share a request while they keep coming;
// a create after an idle spell still goes alone after one window.
func TestCreatesAtArrivalPace(t *testing.T) {
	const (
		window = 20 * time.Millisecond
		gap    = 400 * time.Millisecond
		n      = 30
		pace   = 60 * time.Millisecond // well over the window, well under the gap
	)
	sim, api := newSim(t)
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, BatchWindow: window, BatchStreamGap: gap})

	// A lone create on an idle tenant goes after one window.
	start := time.Now()
	tn.CreateAsync(cipherscale.NewUser{Email: "lone@example.com"}, func(u *cipherscale.User, err error) {
		if err != nil {
			t.Errorf("lone: %v", err)
		}
	})
	for sim.Stats().Count(cipherscale.RouteCreateUsers) == 0 {
		if time.Since(start) > gap {
			t.Fatalf("the lone create was not sent within %s", gap)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * gap) // idle again

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		tn.CreateAsync(cipherscale.NewUser{Email: fmt.Sprintf("paced%02d@example.com", i)}, func(u *cipherscale.User, err error) {
			defer wg.Done()
			if err != nil || u == nil {
				t.Errorf("create %d: %+v, %v", i, u, err)
			}
		})
		time.Sleep(pace)
	}
	wg.Wait()
	// The first of the stream goes alone (it followed an idle spell), the other 29 together.
	if posts := sim.Stats().Count(cipherscale.RouteCreateUsers); posts > 3 {
		t.Errorf("%d create requests for a lone create and %d paced ones, want at most 3", posts, n)
	}
	if users := len(sim.Users()); users != n+1 {
		t.Errorf("%d users in the tenant, want %d", users, n+1)
	}
}

// TestPasses: a tenant lets in at most MaxPasses reconciles; one more is refused and woken,
// once, when a pass frees; a held pass stays taken until its key enters again.
func TestPasses(t *testing.T) {
	_, api := newSim(t)
	tn, _ := newTenant(api, tenant.Options{MaxAge: time.Hour, MaxPasses: 2})
	a, ok1 := tn.Enter("a", nil)
	b, ok2 := tn.Enter("b", nil)
	if !ok1 || !ok2 {
		t.Fatal("the first two reconciles were refused")
	}
	woken := make(chan string, 4)
	if _, ok := tn.Enter("c", func() { woken <- "c" }); ok {
		t.Fatal("a third reconcile got in past MaxPasses 2")
	}
	if _, ok := tn.Enter("d", func() { woken <- "d" }); ok {
		t.Fatal("a fourth reconcile got in past MaxPasses 2")
	}
	b.Hold(time.Minute) // b waits for its turn: its pass stays taken
	b.Release()
	select {
	case k := <-woken:
		t.Fatalf("%s woken while both passes are taken", k)
	default:
	}
	a.Release()
	if k := <-woken; k != "c" {
		t.Fatalf("woke %s, want c (the longest waiting)", k)
	}
	c, ok := tn.Enter("c", nil)
	if !ok {
		t.Fatal("c refused after being woken")
	}
	if b2, ok := tn.Enter("b", nil); !ok {
		t.Fatal("b refused its held pass")
	} else {
		b2.Release()
	}
	if k := <-woken; k != "d" {
		t.Fatalf("woke %s, want d", k)
	}
	c.Release()
	if tn.Waiting() != 0 {
		t.Errorf("%d waiting, want 0", tn.Waiting())
	}
}
