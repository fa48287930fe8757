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
	op      string        // reserve, done, release, allow, setPerHour
	key     string        // the removal's key, or the allow token
	n       int           // allow's n, setPerHour's budget

	want   tenant.Reservation // for reserve
	status *tenant.RemovalBudgetStatus
	grant  bool // for allow
}

func budgetReserve(key string, ok bool, waiting int, retry time.Duration) budgetStep {
	return budgetStep{op: "reserve", key: key, want: tenant.Reservation{OK: ok, Waiting: waiting, RetryAfter: retry}}
}

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
		name:    "sliding window: a unit is free exactly an hour after it was spent",
		perHour: 3,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetAfter(10*time.Minute, budgetReserve("b", true, 0, 0)),
			budgetAfter(10*time.Minute, budgetReserve("c", true, 0, 0)),
			budgetReserve("d", false, 1, 40*time.Minute),
			budgetAfter(30*time.Minute, budgetReserve("e", false, 2, 10*time.Minute)),
			budgetStatus(3, 3, 2, 0),
			budgetAfter(10*time.Minute-time.Nanosecond, budgetReserve("d", false, 2, time.Nanosecond)),
			budgetAfter(time.Nanosecond, budgetReserve("d", true, 1, 0)), // a's unit is free: 09:00 + 1h
			budgetReserve("e", false, 1, 10*time.Minute),
			budgetAfter(10*time.Minute, budgetReserve("e", true, 0, 0)), // b's unit is free
			budgetReserve("f", false, 1, 10*time.Minute),
			budgetStatus(3, 3, 1, 0),
			// f is remembered for two hours after it last asked, then forgotten: nobody wants it.
			budgetAfter(2*h-time.Nanosecond, budgetStatus(3, 0, 1, 0)),
			budgetAfter(time.Nanosecond, budgetStatus(3, 0, 0, 0)),
		},
	}, {
		name:    "no limit: everything passes, and the last hour counts when a limit is set",
		perHour: 0,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetReserve("b", true, 0, 0),
			budgetAfter(30*time.Minute, budgetReserve("c", true, 0, 0)),
			{op: "allow", key: "5", n: 5, grant: true},
			budgetReserve("d", true, 0, 0),
			budgetStatus(0, 4, 0, 5), // the allowance is not spent while there is no limit
			{op: "setPerHour", n: 4},
			budgetReserve("e", true, 0, 0), // from the allowance
			{op: "setPerHour", n: 0},
			budgetStatus(0, 4, 0, 4),
			{op: "setPerHour", n: 3},
			{op: "allow", key: "", grant: false},
			{op: "allow", key: "0", n: 0, grant: false},
			budgetAfter(31*time.Minute, budgetStatus(3, 2, 0, 4)), // a and b have left the window
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
			budgetReserve("c", false, 1, 59*time.Minute),
			budgetReserve("c", false, 1, 59*time.Minute),
			budgetReserve("d", false, 2, 59*time.Minute),
			budgetReserve("c", false, 2, 59*time.Minute),
			budgetStatus(2, 2, 2, 0),
			budgetReserve("b", true, 2, 0),
		},
	}, {
		name:    "a reservation neither done nor released is forgotten with its unit",
		perHour: 1,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetAfter(h, budgetReserve("a", true, 0, 0)), // an hour later it is a new removal: a new unit
			budgetReserve("b", false, 1, h),
		},
	}, {
		name:    "release gives the unit back; done keeps it spent",
		perHour: 2,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetReserve("b", true, 0, 0),
			budgetReserve("c", false, 1, h),
			{op: "release", key: "a"}, // the call failed and removed nobody
			budgetStatus(2, 1, 1, 0),
			budgetReserve("c", true, 0, 0),
			{op: "done", key: "c"},
			{op: "release", key: "c"}, // a release after done gives back nothing
			budgetStatus(2, 2, 0, 0),
			budgetReserve("c", false, 1, h), // after done, the same key is a new removal
			{op: "release", key: "c"},       // no longer wanted: it stops waiting
			budgetStatus(2, 2, 0, 0),
			{op: "release", key: "nobody"},
			budgetStatus(2, 2, 0, 0),
			budgetReserve("d", false, 1, h),
			{op: "done", key: "d"}, // no longer wanted, ended with done: it stops waiting too
			budgetStatus(2, 2, 0, 0),
		},
	}, {
		name:    "allow-removals: n more at once, granted once per value",
		perHour: 1,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetReserve("b", false, 1, h),
			budgetReserve("c", false, 2, h),
			budgetReserve("d", false, 3, h),
			{op: "allow", key: "2", n: 2, grant: true},
			{op: "allow", key: "2", n: 2, grant: false}, // the same annotation read again
			budgetStatus(1, 1, 3, 2),
			budgetReserve("b", true, 2, 0),
			budgetReserve("c", true, 1, 0),
			budgetReserve("d", false, 1, h),
			{op: "release", key: "c"}, // c's call failed: its unit goes back to the allowance
			budgetStatus(1, 1, 1, 1),
			budgetReserve("d", true, 0, 0),
			{op: "allow", key: "3", n: 3, grant: true}, // a new value is a new grant
			budgetStatus(1, 1, 0, 3),
			{op: "allow", key: "", grant: false}, // the annotation was removed
			{op: "allow", key: "3", n: 3, grant: true},
			budgetStatus(1, 1, 0, 6),
			budgetAfter(h, budgetReserve("e", true, 0, 0)), // the allowance is spent before the window
			budgetStatus(1, 0, 0, 5),
		},
	}, {
		name:    "raising the budget lets waiting removals through",
		perHour: 1,
		steps: []budgetStep{
			budgetReserve("a", true, 0, 0),
			budgetReserve("b", false, 1, h),
			budgetReserve("c", false, 2, h),
			{op: "setPerHour", n: 2},
			budgetReserve("c", true, 1, 0),
			budgetReserve("b", false, 1, h),
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
					if got := b.Allow(s.key, s.n); got != s.grant {
						t.Errorf("step %d (+%v) allow %q %d: granted %v, want %v", i, at, s.key, s.n, got, s.grant)
					}
				case "setPerHour":
					b.SetPerHour(s.n)
				case "status":
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if s.status != nil {
					if diff := cmp.Diff(*s.status, b.Status()); diff != "" {
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
// Each finalizer retries several times while it waits; a person then allows 250.
func TestBudgetMassDeletion(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(budgetEpoch)
	b := tenant.NewRemovalBudget(50, clk.Now)
	removed := map[string]int{}
	pass := func() (waiting int) {
		for i := range 300 {
			key := fmt.Sprintf("user/team/u%03d", i)
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
	for range 3 {
		pass()
		clk.SetTime(clk.Now().Add(time.Minute))
	}
	if len(removed) != 50 || b.Waiting() != 250 {
		t.Fatalf("after three passes: %d removed, %d waiting; want 50 and 250", len(removed), b.Waiting())
	}
	keys := b.WaitingKeys()
	if len(keys) != 250 || keys[0] != "user/team/u050" || keys[249] != "user/team/u299" {
		t.Errorf("waiting keys: %d, from %q to %q; want 250 from u050 to u299", len(keys), keys[0], keys[len(keys)-1])
	}
	if !b.Allow("250", 250) {
		t.Fatal("allow-removals 250 was not granted")
	}
	if w := pass(); w != 0 || len(b.WaitingKeys()) != 0 {
		t.Errorf("after allowing 250: %d still waiting (%d keys), want 0", w, len(b.WaitingKeys()))
	}
	b.Allow("250", 250) // the annotation is read again on the next pass
	if got := b.Status(); got != (tenant.RemovalBudgetStatus{PerHour: 50, Spent: 50}) {
		t.Errorf("status %+v, want 50 spent and nothing waiting or allowed", got)
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
	for range 50 {
		wg.Go(func() {
			if b.Allow("100", 100) {
				grants.Add(1)
			}
		})
	}
	wg.Wait()
	if grants.Load() != 1 {
		t.Errorf("the same annotation was granted %d times, want 1", grants.Load())
	}
	if got := b.Status(); got.Allowance != 100 {
		t.Errorf("allowance %d, want 100", got.Allowance)
	}
}

// TestBudgetRestoreAllowToken: a fresh process told which value was used does not grant it again.
func TestBudgetRestoreAllowToken(t *testing.T) {
	b := tenant.NewRemovalBudget(10, nil)
	b.RestoreAllowToken("250")
	if b.Allow("250", 250) {
		t.Error("a restored value was granted again")
	}
	if !b.Allow("300", 300) || b.AllowToken() != "300" {
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
		advance time.Duration
		op      string // reserve, restart, record
		key     string
		ok      bool
		waiting int
		retry   time.Duration
		record  []tenant.SpentMinute
		spent   int // after the step, from Status
	}
	m := func(minute, count int) tenant.SpentMinute {
		return tenant.SpentMinute{Minute: budgetEpoch.Add(time.Duration(minute) * time.Minute), Count: count}
	}
	tests := []struct {
		name    string
		perHour int
		steps   []step
	}{{
		name:    "a restart in the middle of a mass removal keeps the hour spent",
		perHour: 3,
		steps: []step{
			{advance: 10 * time.Second, op: "reserve", key: "a", ok: true, spent: 1},
			{advance: 20 * time.Second, op: "reserve", key: "b", ok: true, spent: 2},
			{advance: 50 * time.Second, op: "reserve", key: "c", ok: true, spent: 3},
			{op: "record", record: []tenant.SpentMinute{m(0, 2), m(1, 1)}, spent: 3},
			{op: "restart", spent: 3},
			// The units of minute 0 are counted as spent at 09:00:59.999999999, the unit of
			// minute 1 at the restart (09:01:20), not later.
			{op: "reserve", key: "d", ok: false, waiting: 1, retry: time.Hour - 20*time.Second - time.Nanosecond, spent: 3},
			{advance: time.Hour - 20*time.Second - 2*time.Nanosecond, op: "reserve", key: "d", ok: false, waiting: 1, retry: time.Nanosecond, spent: 3},
			{advance: time.Nanosecond, op: "reserve", key: "d", ok: true, spent: 2},
			{op: "reserve", key: "e", ok: true, spent: 3},
			{op: "reserve", key: "f", ok: false, waiting: 1, retry: 20*time.Second + time.Nanosecond, spent: 3},
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
			var saved []tenant.SpentMinute
			save := func(_ context.Context, r []tenant.SpentMinute) error { saved = r; return nil }
			b.SetSave(save)
			for i, s := range tt.steps {
				clock.SetTime(clock.Now().Add(s.advance))
				switch s.op {
				case "reserve":
					got := b.Reserve(s.key)
					want := tenant.Reservation{OK: s.ok, Waiting: s.waiting, RetryAfter: s.retry}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("step %d: reserve %s (-want +got):\n%s", i, s.key, diff)
					}
					if got.OK {
						if err := b.Commit(context.Background()); err != nil {
							t.Fatalf("step %d: commit: %v", i, err)
						}
						b.Done(s.key)
					}
				case "record":
					if diff := cmp.Diff(s.record, b.Record()); diff != "" {
						t.Fatalf("step %d: record (-want +got):\n%s", i, diff)
					}
				case "restart":
					if len(saved) > 61 {
						t.Fatalf("step %d: the saved record has %d minutes", i, len(saved))
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
	var last []tenant.SpentMinute
	fail := false
	b.SetSave(func(_ context.Context, r []tenant.SpentMinute) error {
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
	if diff := cmp.Diff([]tenant.SpentMinute{{Minute: budgetEpoch, Count: 200}}, last); diff != "" {
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
	r.SetSave(func(context.Context, []tenant.SpentMinute) error { t.Fatal("saved what it restored"); return nil })
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
