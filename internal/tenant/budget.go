package tenant

import (
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
// concurrent use and keeps its state in memory only.
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
}

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
}

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
		now:     now,
		perHour: max(perHour, 0),
		held:    map[string]reservation{},
		waiting: map[string]time.Time{},
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
	defer b.mu.Unlock()
	now := b.now()
	b.prune(now)
	if _, ok := b.held[key]; ok {
		return Reservation{OK: true, Waiting: len(b.waiting)}
	}
	switch {
	case b.perHour > 0 && b.allowance > 0:
		b.allowance--
		b.held[key] = reservation{at: now, allowance: true}
	case b.perHour == 0 || len(b.spent) < b.perHour:
		b.spent = append(b.spent, now)
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
	defer b.mu.Unlock()
	delete(b.held, key)
	delete(b.waiting, key)
}

// Release gives back the unit of the removal named key because its call was certainly not made
// (refused before it was sent, or answered with an error that removed nobody), and forgets the
// removal if it was waiting.
func (b *RemovalBudget) Release(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	defer b.mu.Unlock()
	b.prune(b.now())
	return len(b.waiting)
}

// WaitingKeys returns the keys of the removals that wait, sorted: after a grant or a raised
// budget the caller requeues their objects, so that they do not wait for their RetryAfter.
func (b *RemovalBudget) WaitingKeys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	defer b.mu.Unlock()
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
