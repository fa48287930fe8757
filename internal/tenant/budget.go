package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RemovalWindow is the sliding window of a removal budget: a unit spent at t is free again at
// t+RemovalWindow.
const RemovalWindow = time.Hour

// waitingMemory is how long a waiting removal is remembered without being asked for again. A
// waiting removal is retried at the latest when the oldest unit of the window frees (within
// RemovalWindow), so one that is not asked for in twice that time is no longer wanted: its
// object was finalized by hand, or its reconciler forgot to end it (Done or Release). A
// reconciler whose removal waits must therefore requeue after Reservation.RetryAfter.
const waitingMemory = 2 * RemovalWindow

// MaxAllowRemovals is the largest n the allow-removals annotation may grant at once.
const MaxAllowRemovals = 100000

// RemovalBudget is the removal budget of one tenant: at most perHour delete or deactivate calls
// in any sliding hour, plus the extra units a person allows. A removal is named by a key (for
// example "user/<namespace>/<name>" or "undeclared/<user id>") so that the retry of a removal
// never spends a second unit and a removal that waits is counted once. It is safe for
// concurrent use. It keeps its state in memory and, once given a SaveFunc, saves the units
// of its window (by minute: at most 61 records whatever perHour is) where a restarted operator
// restores them (Restore), so that a restart never gives a fresh hour.
//
// The life of a removal: Reserve before the call; Done when the call was made or may have been,
// or when the removal is no longer wanted (the unit, if any, stays spent for its hour, and the
// removal stops waiting); Release only when the call was certainly not made (the unit is given
// back). When in doubt, Done: a unit lost is an hour's delay, a unit given back for a removal
// that happened is a removal nobody counted.
type RemovalBudget struct {
	now func() time.Time

	mu      sync.Mutex
	perHour int
	// spent holds the times at which the units of the window were spent, oldest first.
	spent []time.Time
	// held is the reservations not yet Done or Released, by key.
	held map[string]reservation
	// waiting is the removals refused for want of a unit, by key, with when they last asked.
	waiting map[string]time.Time
	// allowance is the units a person allowed that are not yet spent.
	allowance int
	// allowToken is the allow-removals value already granted, "" when none.
	allowToken string

	// restored is false from ExpectRestore until Restore: every removal waits meanwhile.
	restored bool
	// spends counts the units ever spent from the window, so that Commit knows what a save
	// covers.
	spends uint64
	// onWaiting is called, outside the lock, when the number of waiting removals changed.
	onWaiting func()

	// saveMu serializes the saves: a Commit that waited for another's save finds its units
	// covered by it and saves nothing (one write for many removals).
	saveMu sync.Mutex
	save   SaveFunc
	saved  uint64 // spends covered by the last successful save
}

// SpentMinute is what a budget saves of its window: Count units spent in the minute that
// starts at Minute (UTC, whole minute).
type SpentMinute struct {
	Minute time.Time
	Count  int
}

// SaveFunc writes a budget's record (the units of its window, by minute, oldest first) where it
// survives a restart. It replaces the record saved before.
type SaveFunc func(ctx context.Context, record []SpentMinute) error

// ErrNotRestored is the error of Commit, and the reason a removal waits, while a budget that
// expects a restore has not been restored yet.
var ErrNotRestored = errors.New("the removal budget's last hour is not restored yet")

// reservation is a unit held by one removal.
type reservation struct {
	at        time.Time
	allowance bool // the unit came from the allowance, not from the window
}

// Reservation is the budget's answer to Reserve.
type Reservation struct {
	// OK is true when the removal may be made now.
	OK bool
	// Waiting is how many distinct removals wait, this one included when it waits.
	Waiting int
	// RetryAfter is, for a removal that waits, how long until the window frees its next unit.
	RetryAfter time.Duration
	// NotRestored is true when the removal waits because the budget's last hour is not
	// restored yet (after a start); RetryAfter is then short.
	NotRestored bool
}

// restoreRetry is how soon a removal that waits for the restore asks again.
const restoreRetry = time.Second

// RemovalBudgetStatus is what the tenant's status says about its budget.
type RemovalBudgetStatus struct {
	PerHour   int // 0: no limit
	Spent     int // units of the window spent in the last hour
	Waiting   int // distinct removals waiting
	Allowance int // units allowed by a person and not yet spent
}

// NewRemovalBudget returns a budget of perHour units in a sliding hour over the clock now (0 or
// less: no limit; time.Now when now is nil).
func NewRemovalBudget(perHour int, now func() time.Time) *RemovalBudget {
	if now == nil {
		now = time.Now
	}
	return &RemovalBudget{
		now:      now,
		perHour:  max(perHour, 0),
		held:     map[string]reservation{},
		waiting:  map[string]time.Time{},
		restored: true,
	}
}

// ExpectRestore makes every removal wait until Restore is called: set before the removals start
// on a budget whose last hour is saved, so that no removal is let through on a fresh hour.
func (b *RemovalBudget) ExpectRestore() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restored = false
}

// Restored reports whether the budget is restored (or never expected a restore).
func (b *RemovalBudget) Restored() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.restored
}

// Restore counts the units of a saved record as spent, and lets removals through again. A unit
// saved in a minute is counted as spent at the last instant of that minute (never later than
// now), so that it frees no earlier than it would have: the restore may delay a removal by up
// to a minute, never let one through early; and it is saved again in the same minute, so that
// restarts do not add up. Records older than the window, or with no unit, are
// ignored. Only the first Restore counts: the record of a process is restored once.
func (b *RemovalBudget) Restore(record []SpentMinute) {
	b.saveMu.Lock() // the order of Commit: saveMu, then mu
	defer b.saveMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.restored {
		return
	}
	b.restored = true
	now := b.now()
	var add []time.Time
	for _, r := range record {
		at := r.Minute.Truncate(time.Minute).Add(time.Minute - time.Nanosecond)
		if at.After(now) {
			at = now
		}
		for range min(r.Count, MaxAllowRemovals) {
			add = append(add, at)
		}
	}
	b.spent = append(b.spent, add...)
	slices.SortFunc(b.spent, func(x, y time.Time) int { return x.Compare(y) })
	b.prune(now)
	// What was restored is saved already.
	b.spends += uint64(len(add))
	b.saved = max(b.saved, b.spends)
}

func (b *RemovalBudget) record() []SpentMinute {
	var out []SpentMinute
	for _, at := range b.spent {
		m := at.UTC().Truncate(time.Minute)
		if n := len(out); n > 0 && out[n-1].Minute.Equal(m) {
			out[n-1].Count++
			continue
		}
		out = append(out, SpentMinute{Minute: m, Count: 1})
	}
	return out
}

// SetSave makes Commit save the budget's record with save.
func (b *RemovalBudget) SetSave(save SaveFunc) {
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	b.save = save
}

// Commit returns once every unit spent so far is saved: call it after a Reserve that allowed a
// removal and before the removal's call, and Release the unit if it fails. Callers at the same
// time share one save. Without a SaveFunc it saves nothing; on a budget not restored yet it
// returns ErrNotRestored.
func (b *RemovalBudget) Commit(ctx context.Context) error {
	b.mu.Lock()
	want, restored := b.spends, b.restored
	b.mu.Unlock()
	if !restored {
		return ErrNotRestored
	}
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	if b.save == nil || b.saved >= want {
		return nil
	}
	b.mu.Lock()
	b.prune(b.now())
	record, covers := b.record(), b.spends
	b.mu.Unlock()
	if err := b.save(ctx, record); err != nil {
		return fmt.Errorf("saving the removal budget's last hour: %w", err)
	}
	b.saved = covers
	return nil
}

// OnWaitingChange sets a function called, outside the budget's lock, whenever the number of
// removals that wait changed: the tenant's status reports it.
func (b *RemovalBudget) OnWaitingChange(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onWaiting = f
}

// unlockNotify unlocks the budget, then calls onWaiting when the number of waiting removals
// is no longer before.
func (b *RemovalBudget) unlockNotify(before int) {
	f, changed := b.onWaiting, len(b.waiting) != before
	b.mu.Unlock()
	if changed && f != nil {
		f()
	}
}

// SetPerHour changes the budget, for example when the tenant's spec changes. Units spent stay
// spent; raising the budget lets waiting removals through on their next Reserve.
func (b *RemovalBudget) SetPerHour(perHour int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.perHour = max(perHour, 0)
}

// Reserve asks for one unit for the removal named key, before its call is made. A removal that
// already holds a unit (a retry) keeps it and spends nothing more; a reservation neither Done
// nor Released is forgotten when its unit leaves the window, an hour later. Otherwise the
// removal takes a unit of the person's allowance if there is one (so that an allowance is spent
// on the removals it was given for and does not linger to let a later mass removal through),
// else a unit of the window if the window has one, else it waits: it is recorded once under its
// key, and OK is false. With no limit every removal is allowed and the allowance is not spent,
// but the units are still recorded, so that setting a limit counts the last hour's removals.
func (b *RemovalBudget) Reserve(key string) Reservation {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	now := b.now()
	b.prune(now)
	if !b.restored {
		b.waiting[key] = now
		return Reservation{Waiting: len(b.waiting), RetryAfter: restoreRetry, NotRestored: true}
	}
	if _, ok := b.held[key]; ok {
		return Reservation{OK: true, Waiting: len(b.waiting)}
	}
	switch {
	case b.perHour > 0 && b.allowance > 0:
		b.allowance--
		b.held[key] = reservation{at: now, allowance: true}
	case b.perHour == 0 || len(b.spent) < b.perHour:
		b.spent = append(b.spent, now)
		b.spends++
		b.held[key] = reservation{at: now}
	default:
		b.waiting[key] = now
		return Reservation{Waiting: len(b.waiting), RetryAfter: b.spent[0].Add(RemovalWindow).Sub(now)}
	}
	delete(b.waiting, key)
	return Reservation{OK: true, Waiting: len(b.waiting)}
}

// Done ends the removal named key: its call was made (or found the user already gone, or may
// have been made), or the removal is no longer wanted (the object was recreated, the user
// declared again, the policy changed to Orphan, the user found already inactive). Its unit, if
// it held one, stays spent until an hour after it was reserved; it stops waiting; and the key
// is free for a later, different removal of the same object.
func (b *RemovalBudget) Done(key string) {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	delete(b.held, key)
	delete(b.waiting, key)
}

// Release gives back the unit of the removal named key because its call was certainly not made
// (refused before it was sent, or answered with an error that removed nobody), and forgets the
// removal if it was waiting.
func (b *RemovalBudget) Release(key string) {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	delete(b.waiting, key)
	r, ok := b.held[key]
	if !ok {
		return
	}
	delete(b.held, key)
	if r.allowance {
		b.allowance++
		return
	}
	// Any unit spent at the same instant is the same unit as far as the window is concerned.
	for i, at := range b.spent {
		if at.Equal(r.at) {
			b.spent = append(b.spent[:i], b.spent[i+1:]...)
			return
		}
	}
}

// Allow grants n more units at once, for the allow-removals annotation whose value is token.
// The same token is granted once: reading the same annotation again grants nothing. An empty
// token (the annotation is gone) forgets the last one, so that setting the same value again
// later is a new grant. It reports whether it granted.
func (b *RemovalBudget) Allow(token string, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if token == "" {
		b.allowToken = ""
		return false
	}
	if token == b.allowToken || n <= 0 {
		return false
	}
	b.allowToken = token
	b.allowance += n
	return true
}

// AllowToken returns the allow-removals value last granted ("" when none), for the tenant's
// status to record that the annotation was used.
func (b *RemovalBudget) AllowToken() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allowToken
}

// RestoreAllowToken records token as already granted without granting anything: a fresh process
// calls it with the value the tenant's status says was used, so that a restart does not grant
// the same annotation twice.
func (b *RemovalBudget) RestoreAllowToken(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowToken = token
}

// Waiting returns how many distinct removals wait for a unit.
func (b *RemovalBudget) Waiting() int {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	b.prune(b.now())
	return len(b.waiting)
}

// WaitingKeys returns the keys of the removals that wait, sorted: after a grant or a raised
// budget the caller requeues their objects, so that they do not wait for their RetryAfter.
func (b *RemovalBudget) WaitingKeys() []string {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	b.prune(b.now())
	keys := make([]string, 0, len(b.waiting))
	for k := range b.waiting {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Status returns the budget's figures now.
func (b *RemovalBudget) Status() RemovalBudgetStatus {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	b.prune(b.now())
	return RemovalBudgetStatus{PerHour: b.perHour, Spent: len(b.spent), Waiting: len(b.waiting),
		Allowance: b.allowance}
}

// prune frees the units spent an hour or more ago, forgets the reservations whose unit is no
// longer in the window, and the waiting removals nobody asked for in waitingMemory.
func (b *RemovalBudget) prune(now time.Time) {
	cut := now.Add(-RemovalWindow)
	i := 0
	for i < len(b.spent) && !b.spent[i].After(cut) {
		i++
	}
	if i > 0 {
		b.spent = append(b.spent[:0], b.spent[i:]...)
	}
	for k, r := range b.held {
		if !r.at.After(cut) {
			delete(b.held, k)
		}
	}
	wcut := now.Add(-waitingMemory)
	for k, at := range b.waiting {
		if !at.After(wcut) {
			delete(b.waiting, k)
		}
	}
}

// ParseAllowRemovals reads the value of the allow-removals annotation: a whole number from 1 to
// MaxAllowRemovals.
func ParseAllowRemovals(value string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil || n < 1 || n > MaxAllowRemovals {
		return 0, fmt.Errorf("allow-removals must be a whole number from 1 to %d, not %q",
			MaxAllowRemovals, value)
	}
	return n, nil
}
