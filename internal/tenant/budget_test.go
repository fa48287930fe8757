package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

var budgetEpoch = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// budgetStep is one thing that happens to a budget, and what the budget must answer.
type budgetStep struct {
	advance time.Duration // moved on the clock before the step
	op      string        // reserve, done, release, allow, setPerHour, tripped, byNamespace
	key     string        // the removal's key, or the allow token
	n       int           // allow's n, setPerHour's budget
	ns      string        // allow's namespace

	want     tenant.Reservation // for reserve
	status   *tenant.RemovalBudgetStatus
	grant    bool           // for allow
	released int            // for allow
	tripped  bool           // for tripped
	byNS     map[string]int // for byNamespace
}

func budgetReserve(key string, ok bool, waiting int, retry time.Duration) budgetStep {
	return budgetStep{op: "reserve", key: key, want: tenant.Reservation{OK: ok, Waiting: waiting, RetryAfter: retry}}
}

// budgetTrips is a reserve that trips the budget.
func budgetTrips(key string, waiting int) budgetStep {
	s := budgetHeld(key, waiting)
	s.want.TrippedNow = true
	return s
}

// budgetHeld is a reserve that waits on a tripped budget.
func budgetHeld(key string, waiting int) budgetStep {
	return budgetStep{op: "reserve", key: key, want: tenant.Reservation{Waiting: waiting, RetryAfter: 15 * time.Minute, Tripped: true}}
}

func budgetAllow(token string, n int, ns string, granted bool, released int) budgetStep {
	return budgetStep{op: "allow", key: token, n: n, ns: ns, grant: granted, released: released}
}

func budgetTripped(tripped bool) budgetStep { return budgetStep{op: "tripped", tripped: tripped} }

func budgetAfter(d time.Duration, s budgetStep) budgetStep { s.advance = d; return s }

func budgetStatus(perHour, spent, waiting, allowance int) budgetStep {
	return budgetStep{op: "status", status: &tenant.RemovalBudgetStatus{
		PerHour: perHour, Spent: spent, Waiting: waiting, Allowance: allowance}}
}

// TestBudgetTable plays sequences of removals on a budget over a fake clock. The expected answers
// are written out, not computed.
func TestBudgetTable(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name    string
		perHour int
		steps   []budgetStep
	}{{
		name:    "a budget that trips stays tripped: the hour frees its units, and still no removal goes",
		perHour: 3,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetAfter(10*time.Minute, budgetReserve("b", true, 0, 0)),
			budgetAfter(10*time.Minute, budgetReserve("c", true, 0, 0)),
			budgetTripped(false),
			budgetTrips("d", 1),
			budgetTripped(true),
			budgetAfter(30*time.Minute, budgetHeld("e", 2)),
			budgetStatus(3, 3, 2, 0),
			budgetAfter(h, budgetHeld("d", 2)), // a, b and c have left the window
			budgetHeld("e", 2),
			budgetHeld("f", 3), // a removal that starts waiting later waits too
			budgetStatus(3, 0, 3, 0),
			// Waiting removals of a tripped budget are never forgotten by time.
			budgetAfter(10*h, budgetStatus(3, 0, 3, 0)),
			budgetTripped(true),
		},
	}, {
		name:    "no limit: everything passes, and the last hour counts when a limit is set",
		perHour: 0,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetReserve("b", true, 0, 0),
			budgetAfter(30*time.Minute, budgetReserve("c", true, 0, 0)),
			budgetAllow("5", 5, "", true, 0), // nothing waits: the whole allowance lapses
			budgetReserve("d", true, 0, 0),
			budgetStatus(0, 4, 0, 0),
			{op: "setPerHour", n: 5},
			budgetReserve("e", true, 0, 0),
			budgetTrips("f", 1),
			{op: "setPerHour", n: 0}, // no limit: the trip is cleared
			budgetTripped(false),
			budgetReserve("f", true, 0, 0),
			{op: "setPerHour", n: 3},
			budgetAllow("", 0, "", false, 0),
			budgetAllow("0", 0, "", false, 0),
			budgetAfter(31*time.Minute, budgetStatus(3, 4, 0, 0)), // a and b have left the window
		},
	}, {
		name:    "a retry holds its unit and spends nothing more",
		perHour: 2,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetReserve("a", true, 0, 0),
			budgetAfter(time.Minute, budgetReserve("a", true, 0, 0)),
			budgetStatus(2, 1, 0, 0),
			budgetReserve("b", true, 0, 0),
			budgetTrips("c", 1),
			budgetHeld("c", 1),
			budgetHeld("d", 2),
			budgetHeld("c", 2),
			budgetStatus(2, 2, 2, 0),
			budgetReserve("b", true, 2, 0),
		},
	}, {
		name:    "a reservation neither done nor released is forgotten with its unit",
		perHour: 1,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetAfter(h, budgetReserve("a", true, 0, 0)), // an hour later it is a new removal: a new unit
			budgetTrips("b", 1),
		},
	}, {
		name:    "release gives the unit back, done keeps it spent; a trip clears when nothing waits any more",
		perHour: 2,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetReserve("b", true, 0, 0),
			budgetTrips("c", 1),
			{op: "release", key: "a"}, // the call failed and removed nobody
			budgetStatus(2, 1, 1, 0),
			budgetHeld("c", 1),     // a unit is free, but the budget tripped
			{op: "done", key: "c"}, // no longer wanted (its object restored): nothing waits
			budgetTripped(false),
			budgetReserve("c", true, 0, 0), // later, a new removal of c
			{op: "done", key: "c"},
			{op: "release", key: "c"}, // a release after done gives back nothing
			budgetStatus(2, 2, 0, 0),
			budgetTrips("d", 1),
			budgetHeld("e", 2),
			{op: "release", key: "d"}, // no longer wanted: it stops waiting
			budgetTripped(true),       // e still waits
			{op: "release", key: "nobody"},
			budgetStatus(2, 2, 1, 0),
			{op: "done", key: "e"},
			budgetStatus(2, 2, 0, 0),
			budgetTripped(false),
		},
	}, {
		name:    "an allowance releases the removals waiting when it is granted, and nothing else; the rest lapses",
		perHour: 1,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetTrips("b", 1),
			budgetAllow("20", 20, "", true, 1),  // 20 granted to release b
			budgetAllow("20", 20, "", false, 0), // the same annotation read again
			budgetTripped(false),                // nothing waits any more
			budgetStatus(1, 1, 0, 1),
			budgetTrips("c", 1), // a later deletion: the other 19 did not linger
			budgetHeld("d", 2),
			budgetReserve("b", true, 2, 0),
			{op: "release", key: "b"}, // b's call failed: its release goes back to it
			budgetStatus(1, 1, 2, 1),
			budgetReserve("b", true, 2, 0),
			{op: "done", key: "b"},
			budgetStatus(1, 1, 2, 0),
			budgetAllow("1", 1, "", true, 1), // the oldest first: c
			budgetHeld("d", 1),
			budgetReserve("c", true, 1, 0),
			budgetAllow("", 0, "", false, 0), // the annotation was removed
			budgetAllow("1", 1, "", true, 1), // the same value again is a new grant
			budgetTripped(false),
			budgetReserve("d", true, 0, 0),
			// A released removal that never asks again is forgotten two hours after its grant.
			budgetTrips("e", 1),
			budgetAllow("2", 2, "", true, 1),
			budgetStatus(1, 1, 0, 1),
			budgetAfter(2*h, budgetStatus(1, 0, 0, 0)),
		},
	}, {
		name:    "an allowance for one namespace releases only that namespace's waiting removals",
		perHour: 1,
		steps: []budgetStep{
			budgetReserve("user/evil/1", true, 0, 0),
			budgetTrips("user/evil/2", 1),
			budgetHeld("user/evil/3", 2),
			budgetHeld("user/team-b/1", 3),
			budgetHeld("undeclared/x", 4),
			{op: "byNamespace", byNS: map[string]int{"evil": 2, "team-b": 1}},
			budgetAllow("5@team-b", 5, "team-b", true, 1),
			budgetTripped(true),
			{op: "byNamespace", byNS: map[string]int{"evil": 2}},
			budgetReserve("user/team-b/1", true, 3, 0),
			budgetHeld("user/evil/2", 3),
			budgetHeld("user/team-b/2", 4), // team-b's next offboarding waits for the next grant
			budgetStatus(1, 1, 4, 0),
		},
	}, {
		name:    "only a higher budget clears the trip",
		perHour: 1,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetTrips("b", 1),
			budgetHeld("c", 2),
			{op: "setPerHour", n: 1}, // the same: still tripped
			budgetHeld("b", 2),
			{op: "setPerHour", n: 0 + 2},
			budgetTripped(false),
			budgetReserve("c", true, 1, 0),
			budgetTrips("b", 1), // the hour is spent again at 2: tripped again
			{op: "setPerHour", n: 1},
			{op: "setPerHour", n: 2}, // back to the budget it tripped at: still tripped
			budgetTripped(true),
			{op: "setPerHour", n: -1}, // below zero is no limit
			budgetReserve("b", true, 0, 0),
			budgetStatus(0, 3, 0, 0),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(budgetEpoch)
			b := tenant.NewRemovalBudget(tt.perHour, clk.Now)
			for i, s := range tt.steps {
				clk.SetTime(clk.Now().Add(s.advance))
				at := clk.Now().Sub(budgetEpoch)
				switch s.op {
				case "reserve":
					if diff := cmp.Diff(s.want, b.Reserve(s.key)); diff != "" {
						t.Errorf("step %d (+%v) reserve %q (-want +got):\n%s", i, at, s.key, diff)
					}
				case "done":
					b.Done(s.key)
				case "release":
					b.Release(s.key)
				case "allow":
					if granted, released := b.Allow(s.key, s.n, s.ns); granted != s.grant || released != s.released {
						t.Errorf("step %d (+%v) allow %q %d: granted %v releasing %d, want %v releasing %d", i, at, s.key, s.n, granted, released, s.grant, s.released)
					}
				case "setPerHour":
					b.SetPerHour(s.n)
				case "tripped":
					if got, _ := b.Tripped(); got != s.tripped {
						t.Errorf("step %d (+%v) tripped %v, want %v", i, at, got, s.tripped)
					}
				case "byNamespace":
					if diff := cmp.Diff(s.byNS, b.Status().WaitingByNamespace); diff != "" {
						t.Errorf("step %d (+%v) waiting by namespace (-want +got):\n%s", i, at, diff)
					}
				case "status":
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if s.status != nil {
					got := b.Status()
					got.TrippedAt, got.WaitingByNamespace = time.Time{}, nil
					if diff := cmp.Diff(*s.status, got); diff != "" {
						t.Errorf("step %d (+%v) status (-want +got):\n%s", i, at, diff)
					}
					if got := b.Waiting(); got != s.status.Waiting {
						t.Errorf("step %d (+%v) Waiting() = %d, want %d", i, at, got, s.status.Waiting)
					}
				}
			}
		})
	}
}

// TestBudgetMassDeletion is the story: 300 objects deleted at once with a budget of 50.
// Each finalizer asks again every few minutes while it waits, for two simulated hours: still
// exactly 50 removed, time releases nothing. A person then allows 250: each is removed once.
func TestBudgetMassDeletion(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(budgetEpoch)
	b := tenant.NewRemovalBudget(50, clk.Now)
	removed := map[string]int{}
	pass := func() (waiting int) {
		for i := range 300 {
			key := tenant.UserRemovalKey("team", fmt.Sprintf("u%03d", i))
			if removed[key] > 0 {
				continue // finalized: its object is gone
			}
			r := b.Reserve(key)
			if r.OK {
				removed[key]++
				b.Done(key)
			}
			waiting = r.Waiting
		}
		return waiting
	}
	for range 2 * 60 / 5 {
		pass()
		clk.SetTime(clk.Now().Add(5 * time.Minute))
	}
	if clk.Now().Sub(budgetEpoch) != 2*time.Hour {
		t.Fatalf("the clock moved %v", clk.Now().Sub(budgetEpoch))
	}
	pass()
	if len(removed) != 50 || b.Waiting() != 250 {
		t.Fatalf("after two simulated hours: %d removed, %d waiting; want exactly 50 and 250", len(removed), b.Waiting())
	}
	if st := b.Status(); st.Spent != 0 || st.TrippedAt != budgetEpoch || st.WaitingByNamespace["team"] != 250 {
		t.Fatalf("status %+v: want the window empty, tripped at the start, 250 waiting in team", st)
	}
	keys := b.WaitingKeys()
	if len(keys) != 250 || keys[0] != tenant.UserRemovalKey("team", "u050") || keys[249] != tenant.UserRemovalKey("team", "u299") {
		t.Errorf("waiting keys: %d, from %q to %q; want 250 from u050 to u299", len(keys), keys[0], keys[len(keys)-1])
	}
	if granted, released := b.Allow("250", 250, ""); !granted || released != 250 {
		t.Fatalf("allow-removals 250: granted %v, released %d", granted, released)
	}
	if w := pass(); w != 0 || len(b.WaitingKeys()) != 0 {
		t.Errorf("after allowing 250: %d still waiting (%d keys), want 0", w, len(b.WaitingKeys()))
	}
	b.Allow("250", 250, "") // the annotation is read again on the next pass
	if got := b.Status(); got.Spent != 0 || got.Waiting != 0 || got.Allowance != 0 || !got.TrippedAt.IsZero() {
		t.Errorf("status %+v, want nothing spent, waiting or released, and no trip", got)
	}
	if len(removed) != 300 {
		t.Errorf("%d removed, want 300", len(removed))
	}
	for k, n := range removed {
		if n != 1 {
			t.Errorf("%s removed %d times", k, n)
		}
	}
}

// TestBudgetConcurrent: many goroutines reserving at once, each removal asking several times,
// get exactly perHour units; the rest wait, each counted once; concurrent reads of the same
// annotation grant it once.
func TestBudgetConcurrent(t *testing.T) {
	const perHour, removals, asks = 37, 400, 3
	clk := clocktesting.NewFakeClock(budgetEpoch)
	b := tenant.NewRemovalBudget(perHour, clk.Now)
	var granted, grants atomic.Int64
	var wg sync.WaitGroup
	for i := range removals {
		wg.Go(func() {
			key := fmt.Sprintf("user/ns/u%d", i)
			got := false
			for range asks {
				if b.Reserve(key).OK {
					got = true
				}
				_ = b.Waiting()
				_ = b.Status()
			}
			if got {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != perHour || b.Waiting() != removals-perHour {
		t.Fatalf("%d granted, %d waiting; want %d and %d", granted.Load(), b.Waiting(), perHour, removals-perHour)
	}
	var releasedAll atomic.Int64
	for range 50 {
		wg.Go(func() {
			if granted, released := b.Allow("100", 100, ""); granted {
				grants.Add(1)
				releasedAll.Add(int64(released))
			}
		})
	}
	wg.Wait()
	if grants.Load() != 1 || releasedAll.Load() != 100 {
		t.Errorf("the same annotation was granted %d times releasing %d, want once releasing 100", grants.Load(), releasedAll.Load())
	}
	if got := b.Status(); got.Allowance != 100 || got.Waiting != removals-perHour-100 {
		t.Errorf("released %d, waiting %d; want 100 and %d", got.Allowance, got.Waiting, removals-perHour-100)
	}
}

// TestBudgetRestoreAllowToken: a fresh process told which value was used does not grant it again.
func TestBudgetRestoreAllowToken(t *testing.T) {
	b := tenant.NewRemovalBudget(10, nil)
	b.RestoreAllowToken("250")
	if granted, _ := b.Allow("250", 250, ""); granted {
		t.Error("a restored value was granted again")
	}
	if granted, _ := b.Allow("300", 300, ""); !granted || b.AllowToken() != "300" {
		t.Errorf("a new value was not granted or not recorded (token %q)", b.AllowToken())
	}
}

func TestParseAllowRemovals(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"250", 250, true},
		{" 3 ", 3, true},
		{"1", 1, true},
		{"100000", 100000, true},
		{"100001", 0, false},
		{"0", 0, false},
		{"-5", 0, false},
		{"", 0, false},
		{"ten", 0, false},
		{"2.5", 0, false},
	}
	for _, tt := range tests {
		got, err := tenant.ParseAllowRemovals(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseAllowRemovals(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestBudgetRestartTable saves a budget's record as removals are made, "restarts" (a new
// budget expecting a restore), restores the record and plays on, over a fake clock. The
// expected answers are written out.
func TestBudgetRestartTable(t *testing.T) {
	type step struct {
		advance    time.Duration
		op         string // reserve, restart, record, check
		key        string
		ok         bool
		waiting    int
		retry      time.Duration
		tripped    bool // reserve: the reservation says tripped; check: the budget is
		trippedNow bool
		record     []tenant.SpentMinute
		spent      int // after the step, from Status
	}
	m := func(minute, count int) tenant.SpentMinute {
		return tenant.SpentMinute{Minute: budgetEpoch.Add(time.Duration(minute) * time.Minute), Count: count}
	}
	held := 15 * time.Minute
	tests := []struct {
		name    string
		perHour int
		steps   []step
	}{{
		name:    "a restart in the middle of a mass removal keeps the hour spent, and the trip",
		perHour: 3,
		steps: []step{
			{advance: 10 * time.Second, op: "reserve", key: "a", ok: true, spent: 1},
			{advance: 20 * time.Second, op: "reserve", key: "b", ok: true, spent: 2},
			{advance: 50 * time.Second, op: "reserve", key: "c", ok: true, spent: 3},
			{op: "record", record: []tenant.SpentMinute{m(0, 2), m(1, 1)}, spent: 3},
			{op: "restart", spent: 3},
			{op: "reserve", key: "d", ok: false, waiting: 1, retry: held, tripped: true, trippedNow: true, spent: 3},
			{op: "restart", spent: 3},
			// The trip and the removal that waits are restored: d waits before it asks again.
			{op: "check", tripped: true, waiting: 1, spent: 3},
			{advance: 2 * time.Hour, op: "reserve", key: "d", ok: false, waiting: 1, retry: held, tripped: true, spent: 0},
			{op: "reserve", key: "e", ok: false, waiting: 2, retry: held, tripped: true, spent: 0},
			{op: "restart", spent: 0},
			{op: "check", tripped: true, waiting: 2, spent: 0},
		},
	}, {
		name:    "a saved unit counts to the end of its minute, never less; the record keeps only the hour",
		perHour: 100,
		steps: []step{
			{op: "reserve", key: "a", ok: true, spent: 1},
			{advance: 30 * time.Minute, op: "reserve", key: "b", ok: true, spent: 2},
			{advance: 30 * time.Minute, op: "record", record: []tenant.SpentMinute{m(30, 1)}, spent: 1},
			// The last save (at 09:30) has a's unit of minute 0: counted until 10:00:59.999999999.
			{op: "restart", spent: 2},
			{advance: time.Minute - 2*time.Nanosecond, op: "record", record: []tenant.SpentMinute{m(0, 1), m(30, 1)}, spent: 2},
			{advance: time.Nanosecond, op: "record", record: []tenant.SpentMinute{m(30, 1)}, spent: 1},
			{advance: 30 * time.Minute, op: "record", record: nil, spent: 0},
		},
	}, {
		name:    "a record is at most 61 minutes whatever the budget",
		perHour: 1000,
		steps: func() []step {
			var s []step
			for i := range 70 {
				s = append(s, step{advance: time.Minute, op: "reserve", key: fmt.Sprint(i), ok: true, spent: min(i+1, 60)})
			}
			return append(s, step{op: "restart", spent: 60})
		}(),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clocktesting.NewFakePassiveClock(budgetEpoch)
			b := tenant.NewRemovalBudget(tt.perHour, clock.Now)
			var saved tenant.BudgetRecord
			save := func(_ context.Context, r tenant.BudgetRecord) error { saved = r; return nil }
			b.SetSave(save)
			for i, s := range tt.steps {
				clock.SetTime(clock.Now().Add(s.advance))
				switch s.op {
				case "reserve":
					got := b.Reserve(s.key)
					want := tenant.Reservation{OK: s.ok, Waiting: s.waiting, RetryAfter: s.retry, Tripped: s.tripped, TrippedNow: s.trippedNow}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("step %d: reserve %s (-want +got):\n%s", i, s.key, diff)
					}
					if got.OK || got.Tripped { // the removal's commit, or the tenant's pass after a change
						if err := b.Commit(context.Background()); err != nil {
							t.Fatalf("step %d: commit: %v", i, err)
						}
					}
					if got.OK {
						b.Done(s.key)
					}
				case "record":
					if diff := cmp.Diff(s.record, b.Record().Minutes); diff != "" {
						t.Fatalf("step %d: record (-want +got):\n%s", i, diff)
					}
				case "check":
					if tripped, _ := b.Tripped(); tripped != s.tripped || b.Waiting() != s.waiting {
						t.Fatalf("step %d: tripped %v with %d waiting, want %v with %d", i, tripped, b.Waiting(), s.tripped, s.waiting)
					}
				case "restart":
					if len(saved.Minutes) > 61 {
						t.Fatalf("step %d: the saved record has %d minutes", i, len(saved.Minutes))
					}
					b = tenant.NewRemovalBudget(tt.perHour, clock.Now)
					b.ExpectRestore()
					b.SetSave(save)
					if res := b.Reserve("early"); res.OK || !res.NotRestored {
						t.Fatalf("step %d: a removal before the restore: %+v", i, res)
					}
					if err := b.Commit(context.Background()); !errors.Is(err, tenant.ErrNotRestored) {
						t.Fatalf("step %d: commit before the restore: %v", i, err)
					}
					b.Done("early")
					b.Restore(saved)
				}
				if got := b.Status().Spent; got != s.spent {
					t.Fatalf("step %d: spent %d, want %d", i, got, s.spent)
				}
			}
		})
	}
}

// TestBudgetCommit: a removal is saved before Commit returns; removals reserved at the same time
// share saves; a failed save is reported; a restored record is not saved again.
func TestBudgetCommit(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(budgetEpoch)
	b := tenant.NewRemovalBudget(0, clock.Now)
	var saves atomic.Int32
	var mu sync.Mutex
	var last tenant.BudgetRecord
	fail := false
	b.SetSave(func(_ context.Context, r tenant.BudgetRecord) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("the API server is away")
		}
		saves.Add(1)
		last = r
		return nil
	})
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !b.Reserve(fmt.Sprint(i)).OK {
				t.Error("refused without a limit")
				return
			}
			if err := b.Commit(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := saves.Load(); n < 1 || n > 200 {
		t.Fatalf("%d saves", n)
	}
	if diff := cmp.Diff([]tenant.SpentMinute{{Minute: budgetEpoch, Count: 200}}, last.Minutes); diff != "" {
		t.Fatalf("last save (-want +got):\n%s", diff)
	}
	before := saves.Load()
	if err := b.Commit(context.Background()); err != nil || saves.Load() != before {
		t.Fatalf("a commit with nothing new saved again: %v", err)
	}
	fail = true
	b.Reserve("x")
	if err := b.Commit(context.Background()); err == nil {
		t.Fatal("a failed save was not reported")
	}
	fail = false
	if err := b.Commit(context.Background()); err != nil || saves.Load() != before+1 {
		t.Fatalf("the failed save was not made again: %v, %d saves", err, saves.Load())
	}

	r := tenant.NewRemovalBudget(0, clock.Now)
	r.ExpectRestore()
	r.SetSave(func(context.Context, tenant.BudgetRecord) error { t.Fatal("saved what it restored"); return nil })
	r.Restore(last)
	if err := r.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestBudgetWaitingChange: the budget says when the number of waiting removals changed, and only
// then.
func TestBudgetWaitingChange(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(budgetEpoch)
	b := tenant.NewRemovalBudget(1, clock.Now)
	calls := 0
	b.OnWaitingChange(func() { calls++ })
	b.Reserve("a")
	b.Reserve("b") // waits
	b.Reserve("b") // waits still
	b.Reserve("c") // waits
	b.Done("b")
	b.Done("a") // was not waiting
	if calls != 3 {
		t.Fatalf("%d calls, want 3", calls)
	}
}
