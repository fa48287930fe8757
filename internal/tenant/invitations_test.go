package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestInvitationLog: the cap counts the sends to an address whoever asked, merges the object's
// own record without counting a send twice, gives back a send that was not made, survives a
// restart through its record, and frees a send 24 hours after it was made.
func TestInvitationLog(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(budgetEpoch)
	l := tenant.NewInvitationLog("CipherscaleTenant/team/people", 3, clk.Now)
	var saved []tenant.InvitationSends
	l.SetSave(func(_ context.Context, r []tenant.InvitationSends) error { saved = r; return nil })
	reserve := func(email string, also []time.Time) tenant.InvitationReservation {
		t.Helper()
		res, err := l.Reserve(email, also)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK {
			if err := l.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	first := reserve("Ann@Example.com", nil)
	if !first.OK || first.Count != 1 {
		t.Fatalf("first send: %+v", first)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	// The object's own record holds the first send (to the second): it is not counted twice.
	if res := reserve("ann@example.com ", []time.Time{first.At.Truncate(time.Second)}); !res.OK || res.Count != 2 {
		t.Fatalf("second send: %+v", res)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	third := reserve("ann@example.com", nil)
	if !third.OK || third.Count != 3 {
		t.Fatalf("third send: %+v", third)
	}
	l.Cancel("ann@example.com", third.At) // refused by the API: not sent
	if res := reserve("ann@example.com", nil); !res.OK || res.Count != 3 {
		t.Fatalf("after a send given back: %+v", res)
	}
	if res := reserve("ann@example.com", nil); res.OK || !res.Until.Equal(budgetEpoch.Add(24*time.Hour)) {
		t.Fatalf("a fourth send: %+v; want refused until 24 hours after the first", res)
	}
	if res := reserve("bob@example.com", nil); !res.OK {
		t.Fatalf("another address: %+v", res)
	}

	// The record holds hashes, never an address.
	if len(saved) != 2 {
		t.Fatalf("saved %d addresses, want 2", len(saved))
	}
	for _, s := range saved {
		if strings.Contains(s.Email, "@") || strings.Contains(strings.ToLower(s.Email), "ann") {
			t.Errorf("the record names %q", s.Email)
		}
	}
	if tenant.HashEmail("a", "ann@example.com") == tenant.HashEmail("b", "ann@example.com") {
		t.Error("two tenants hash an address the same")
	}

	// A restart: a new log, restored from the record, refuses the fourth too.
	r := tenant.NewInvitationLog("CipherscaleTenant/team/people", 3, clk.Now)
	r.ExpectRestore()
	if _, err := r.Reserve("ann@example.com", nil); !errors.Is(err, tenant.ErrInvitationsNotRestored) {
		t.Fatalf("a send before the restore: %v", err)
	}
	r.Restore(saved)
	if res, _ := r.Reserve("ANN@example.com", nil); res.OK {
		t.Fatal("the restart reset the cap")
	}
	clk.SetTime(budgetEpoch.Add(24 * time.Hour))
	if res, _ := r.Reserve("ann@example.com", nil); !res.OK || res.Count != 3 {
		t.Fatalf("24 hours after the first send: %+v", res)
	}
	// No cap: every send goes, still counted.
	r.SetLimit(0)
	for range 5 {
		if res, _ := r.Reserve("ann@example.com", nil); !res.OK {
			t.Fatal("refused without a cap")
		}
	}
}

// TestInvitationLogBounded: the record holds at most MaxRecordedAddresses addresses, those
// sent to last.
func TestInvitationLogBounded(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(budgetEpoch)
	l := tenant.NewInvitationLog("t", 5, clk.Now)
	for i := range tenant.MaxRecordedAddresses + 10 {
		clk.SetTime(clk.Now().Add(time.Second))
		if res, err := l.Reserve(fmt.Sprintf("u%d@example.com", i), nil); err != nil || !res.OK {
			t.Fatal(res, err)
		}
	}
	rec := l.Record()
	if len(rec) != tenant.MaxRecordedAddresses {
		t.Fatalf("%d addresses recorded", len(rec))
	}
	for _, r := range rec {
		if r.Email == tenant.HashEmail("t", "u0@example.com") {
			t.Fatal("the oldest address was kept over the newest")
		}
	}
}

// TestInvitationSavesSpaced: a large record is not rewritten for every send: the sends reserved
// while a save of 2,000 addresses waits for its spacing share the next save, and each Commit
// returns only once a save holds its send; a small record is saved at once, every time.
func TestInvitationSavesSpaced(t *testing.T) {
	l := tenant.NewInvitationLog("t", 5, time.Now)
	var (
		mu    sync.Mutex
		saves int
		last  map[string]bool
	)
	l.SetSave(func(_ context.Context, r []tenant.InvitationSends) error {
		mu.Lock()
		defer mu.Unlock()
		saves++
		last = map[string]bool{}
		for _, s := range r {
			last[s.Email] = true
		}
		return nil
	})
	reserve := func(email string) {
		t.Helper()
		if res, err := l.Reserve(email, nil); err != nil || !res.OK {
			t.Fatalf("reserve %s: %+v, %v", email, res, err)
		}
	}
	for i := range tenant.MaxRecordedAddresses {
		reserve(fmt.Sprintf("user%d@example.com", i))
	}
	if err := l.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	const senders = 50
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("new%d@example.com", i)
			reserve(email)
			if err := l.Commit(context.Background()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !last[tenant.HashEmail("t", email)] {
				t.Errorf("Commit of %s returned before a save held it", email)
			}
		}()
	}
	wg.Wait()
	if saves > 3 {
		t.Errorf("%d saves of a %d-address record for %d sends close together, want them to share one or two", saves, tenant.MaxRecordedAddresses, senders)
	}

	small := tenant.NewInvitationLog("s", 5, time.Now)
	var smallSaves int
	small.SetSave(func(context.Context, []tenant.InvitationSends) error { smallSaves++; return nil })
	start := time.Now()
	for i := range 10 {
		if res, err := small.Reserve(fmt.Sprintf("a%d@example.com", i), nil); err != nil || !res.OK {
			t.Fatal(res, err)
		}
		if err := small.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if smallSaves != 10 || time.Since(start) > time.Second {
		t.Errorf("a small record: %d saves in %v, want 10 at once", smallSaves, time.Since(start))
	}
}
