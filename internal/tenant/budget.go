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

// waitingMemory is how long a removal that waits, while the budget has not tripped, or a removal
// released by an allowance, is remembered without being asked for again: its object was
// finalized by hand, or its reconciler forgot to end it (Done or Release). A reconciler whose
// removal waits must therefore requeue after Reservation.RetryAfter. The removals that wait on
// a tripped budget are never forgotten by time: only a person releases them.
const waitingMemory = 2 * RemovalWindow

// trippedRetry is how soon a removal that waits on a tripped budget asks again. Time releases
// nothing; the retry only keeps the removal known. A person's act wakes the removals at once.
const trippedRetry = 15 * time.Minute

// MaxAllowRemovals is the largest n the allow-removals annotation may grant at once.
const MaxAllowRemovals = 100000

// MaxRecordedRemovals bounds the removals a budget's record lists as waiting, and as released:
// the record lives in the tenant object's status. Past it, the removals that wait still wait
// (the hold itself is recorded), but an allowance granted after a restart and before they ask
// again releases only the ones listed.
const MaxRecordedRemovals = 1000

// Keys of removals. A removal is named by a key so that its retry never spends a second unit
// and a removal that waits is counted once.
const (
	// userRemovalPrefix starts the key of the removal of a CipherscaleUser's tenant user:
	// user/<namespace>/<object uid>. The uid, not the name: a later object of the same name is
	// another removal, which an allowance for this one does not release.
	userRemovalPrefix = "user/"
)

// UserRemovalKey is the key of the removal (delete or deactivate) that the CipherscaleUser with
// this namespace and uid makes.
func UserRemovalKey(namespace, uid string) string {
	return userRemovalPrefix + namespace + "/" + uid
}

// RemovalNamespace returns the namespace of a CipherscaleUser's removal key, "" for any other
// key (an undeclared user's, which belongs to the tenant, not to a namespace).
func RemovalNamespace(key string) string {
	rest, ok := strings.CutPrefix(key, userRemovalPrefix)
	if !ok {
		return ""
	}
	ns, _, _ := strings.Cut(rest, "/")
	return ns
}

// RemovalBudget is the removal budget of one tenant: at most perHour delete or deactivate calls
// in any sliding hour. A budget that trips stays tripped: once a removal had to wait, every
// removal of the tenant waits, however many units the hour frees later, until a person acts:
// an allowance (Allow) releases the removals that wait when it is granted, and nothing else; a
// higher perHour (SetPerHour) clears the trip; and the trip clears by itself only when nothing
// waits any more because each waiting removal ended (Done or Release: its object was restored,
// or finalized by a person). Time alone never lets a mass removal through.
//
// It is safe for concurrent use. It keeps its state in memory and, once given a SaveFunc, saves
// its record (the units of its window by minute, whether it tripped, what waits, what an
// allowance released, the allowance granted) where a restarted operator restores it (Restore),
// so that a restart never gives a fresh hour nor clears a trip.
//
// The life of a removal: Reserve before the call; Commit; Done when the call was made or may
// have been, or when the removal is no longer wanted (the unit, if any, stays spent for its
// hour, and the removal stops waiting); Release only when the call was certainly not made (the
// unit is given back). When in doubt, Done: a unit lost is an hour's delay, a unit given back
// for a removal that happened is a removal nobody counted.
type RemovalBudget struct {
	now func() time.Time

	mu      sync.Mutex
	perHour int
	// spent holds the times at which the units of the window were spent, oldest first.
	spent []time.Time
	// held is the reservations not yet Done or Released, by key.
	held map[string]reservation
	// waiting is the removals refused for want of a unit, by key.
	waiting map[string]waitingRemoval
	// released is the removals an allowance released that have not reserved their unit yet, by
	// key, with when they were released.
	released map[string]time.Time
	// allowToken is the allow-removals value already granted, "" when none.
	allowToken string

	// trippedAt is when the budget tripped (zero: it has not); trippedPerHour is perHour then:
	// only a higher one clears the trip.
	trippedAt      time.Time
	trippedPerHour int

	// restored is false from ExpectRestore until Restore: every removal waits meanwhile.
	restored bool
	// version counts the changes to what the record holds, so that Commit knows what a save
	// covers.
	version uint64
	// onWaiting is called, outside the lock, when the number of waiting removals changed.
	onWaiting func()

	// saveMu serializes the saves: a Commit that waited for another's save finds its changes
	// covered by it and saves nothing (one write for many removals).
	saveMu sync.Mutex
	save   SaveFunc
	saved  uint64 // version covered by the last successful save
}

// waitingRemoval is a removal that waits: since when, and when it last asked.
type waitingRemoval struct {
	since, asked time.Time
}

// reservation is a unit held by one removal.
type reservation struct {
	at       time.Time
	released bool // an allowance released the removal: the unit is not the window's
}

// Reservation is the budget's answer to Reserve.
type Reservation struct {
	// OK is true when the removal may be made now.
	OK bool
	// Waiting is how many distinct removals wait, this one included when it waits.
	Waiting int
	// RetryAfter is, for a removal that waits, how long until it should ask again: when the
	// window frees its next unit, or, on a tripped budget, a while (time releases nothing then;
	// the removal is woken when a person acts).
	RetryAfter time.Duration
	// Tripped is true when the removal waits because the budget tripped (this reservation, or
	// an earlier one, found the hour spent): it waits until a person acts.
	Tripped bool
	// TrippedNow is true for the reservation that tripped the budget: its caller saves the
	// trip (Commit) before anything else happens.
	TrippedNow bool
	// NotRestored is true when the removal waits because the budget's last hour is not
	// restored yet (after a start); RetryAfter is then short.
	NotRestored bool
}

// RemovalBudgetStatus is what the tenant's status says about its budget.
type RemovalBudgetStatus struct {
	PerHour int // 0: no limit
	Spent   int // units of the window spent in the last hour
	Waiting int // distinct removals waiting
	// Allowance is how many removals an allowance released that are not made yet.
	Allowance int
	// TrippedAt is when the budget tripped; zero when it has not.
	TrippedAt time.Time
	// WaitingByNamespace counts the waiting removals of CipherscaleUsers by namespace (the
	// removals of undeclared users are in Waiting only).
	WaitingByNamespace map[string]int
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
		waiting:  map[string]waitingRemoval{},
		released: map[string]time.Time{},
		restored: true,
	}
}

// waitingOldestFirst returns the keys that wait, of namespace ns only when ns is not empty,
// in the order they started waiting.
func (b *RemovalBudget) waitingOldestFirst(ns string) []string {
	keys := make([]string, 0, len(b.waiting))
	for k := range b.waiting {
		if ns == "" || RemovalNamespace(k) == ns {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y string) int {
		if c := b.waiting[x].since.Compare(b.waiting[y].since); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	return keys
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
// spent. A budget raised above the one in force when it tripped (or set to 0, no limit) is no
// longer tripped: the removals that wait get the free units on their next Reserve, and trip it
// again if there are not enough.
func (b *RemovalBudget) SetPerHour(perHour int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.perHour = max(perHour, 0)
	if b.tripped() && (b.perHour == 0 || b.perHour > b.trippedPerHour) {
		b.untrip()
	}
}

func (b *RemovalBudget) tripped() bool { return !b.trippedAt.IsZero() }

func (b *RemovalBudget) untrip() {
	b.trippedAt, b.trippedPerHour = time.Time{}, 0
	b.version++
}

// Tripped reports whether the budget tripped, and since when.
func (b *RemovalBudget) Tripped() (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tripped(), b.trippedAt
}

// Reserve asks for one unit for the removal named key, before its call is made. A removal that
// already holds a unit (a retry) keeps it and spends nothing more; a reservation neither Done
// nor Released is forgotten when its unit leaves the window, an hour later. A removal an
// allowance released takes its unit from the allowance. Otherwise, on a budget that has not
// tripped, the removal takes a unit of the window if the window has one; if it has none, the
// budget trips. On a tripped budget every other removal waits: it is recorded once under its
// key, and OK is false. With no limit every removal is allowed, but the units are still
// recorded, so that setting a limit counts the last hour's removals.
func (b *RemovalBudget) Reserve(key string) Reservation {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	now := b.now()
	b.prune(now)
	if !b.restored {
		b.wait(key, now)
		return Reservation{Waiting: len(b.waiting), RetryAfter: restoreRetry, NotRestored: true}
	}
	if _, ok := b.held[key]; ok {
		return Reservation{OK: true, Waiting: len(b.waiting)}
	}
	if _, ok := b.released[key]; ok {
		delete(b.released, key)
		b.held[key] = reservation{at: now, released: true}
		b.version++
		return Reservation{OK: true, Waiting: len(b.waiting)}
	}
	if b.perHour > 0 && (b.tripped() || len(b.spent) >= b.perHour) {
		trippedNow := !b.tripped()
		if trippedNow {
			b.trippedAt, b.trippedPerHour = now, b.perHour
			b.version++
		}
		b.wait(key, now)
		return Reservation{Waiting: len(b.waiting), RetryAfter: trippedRetry, Tripped: true, TrippedNow: trippedNow}
	}
	b.spent = append(b.spent, now)
	b.version++
	b.held[key] = reservation{at: now}
	delete(b.waiting, key) // it may have waited before the budget was raised
	return Reservation{OK: true, Waiting: len(b.waiting)}
}

// wait records that the removal named key waits; mu is held.
func (b *RemovalBudget) wait(key string, now time.Time) {
	w, ok := b.waiting[key]
	if !ok {
		w.since = now
		b.version++
	}
	w.asked = now
	b.waiting[key] = w
}

// Done ends the removal named key: its call was made (or found the user already gone, or may
// have been made), or the removal is no longer wanted (the object was recreated, the user
// declared again, the policy changed to Orphan, the user found already inactive). Its unit, if
// it held one, stays spent until an hour after it was reserved; it stops waiting, and an
// allowance that released it is spent; and the key is free for a later, different removal. A
// tripped budget with nothing left waiting is no longer tripped.
func (b *RemovalBudget) Done(key string) {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	b.end(key)
}

// end forgets the removal named key everywhere; mu is held.
func (b *RemovalBudget) end(key string) {
	_, held := b.held[key]
	_, waited := b.waiting[key]
	_, released := b.released[key]
	delete(b.held, key)
	delete(b.waiting, key)
	delete(b.released, key)
	if held || waited || released {
		b.version++
	}
	if waited && len(b.waiting) == 0 && b.tripped() {
		b.untrip() // the waiting objects were restored, or finalized by a person
	}
}

// Release gives back the unit of the removal named key because its call was certainly not made
// (refused before it was sent, or answered with an error that removed nobody), and forgets the
// removal if it was waiting. A removal an allowance released gets its release back, for its
// retry.
func (b *RemovalBudget) Release(key string) {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	r, ok := b.held[key]
	if !ok {
		b.end(key)
		return
	}
	delete(b.held, key)
	b.version++
	if r.released {
		b.released[key] = b.now()
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

// Waiting returns how many distinct removals wait for a unit.
func (b *RemovalBudget) Waiting() int {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	b.prune(b.now())
	return len(b.waiting)
}

// WaitingKeys returns the keys of the removals that wait, and of those an allowance released,
// sorted: after a grant or a raised budget the caller requeues their objects, so that they do
// not wait for their RetryAfter.
func (b *RemovalBudget) WaitingKeys() []string {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	b.prune(b.now())
	keys := make([]string, 0, len(b.waiting)+len(b.released))
	for k := range b.waiting {
		keys = append(keys, k)
	}
	for k := range b.released {
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
	s := RemovalBudgetStatus{PerHour: b.perHour, Spent: len(b.spent), Waiting: len(b.waiting),
		Allowance: len(b.released), TrippedAt: b.trippedAt}
	for k := range b.waiting {
		if ns := RemovalNamespace(k); ns != "" {
			if s.WaitingByNamespace == nil {
				s.WaitingByNamespace = map[string]int{}
			}
			s.WaitingByNamespace[ns]++
		}
	}
	return s
}

// prune frees the units spent an hour or more ago, forgets the reservations whose unit is no
// longer in the window, the removals released by an allowance that did not ask in
// waitingMemory, and, on a budget that has not tripped, the waiting removals nobody asked for
// in waitingMemory. On a tripped budget no waiting removal is forgotten by time: the trip stays
// until a person acts.
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
	for k, at := range b.released {
		if !at.After(wcut) {
			delete(b.released, k)
			b.version++
		}
	}
	if b.tripped() {
		return
	}
	for k, w := range b.waiting {
		if !w.asked.After(wcut) {
			delete(b.waiting, k)
			b.version++
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
