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

// SpentMinute is what a budget saves of its window: Count units spent in the minute that
// starts at Minute (UTC, whole minute).
type SpentMinute struct {
	Minute time.Time
	Count  int
}

// BudgetRecord is what a budget saves, and restores after a restart.
type BudgetRecord struct {
	// Minutes are the units of the window, by minute, oldest first.
	Minutes []SpentMinute
	// TrippedAt is when the budget tripped (zero: it has not); TrippedPerHour the budget then.
	TrippedAt      time.Time
	TrippedPerHour int
	// Waiting are the keys of the removals that wait, oldest first, at most
	// MaxRecordedRemovals.
	Waiting []string
	// Released are the keys of the removals an allowance released that are not made yet,
	// sorted, at most MaxRecordedRemovals.
	Released []string
	// AllowToken is the allow-removals value already granted ("": none).
	AllowToken string
}

// SaveFunc writes a budget's record where it survives a restart. It replaces the record saved
// before.
type SaveFunc func(ctx context.Context, record BudgetRecord) error

// ErrNotRestored is the error of Commit, and the reason a removal waits, while a budget that
// expects a restore has not been restored yet.
var ErrNotRestored = errors.New("the removal budget's last hour is not restored yet")

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

// restoreRetry is how soon a removal that waits for the restore asks again.
const restoreRetry = time.Second

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

// ExpectRestore makes every removal wait until Restore is called: set before the removals start
// on a budget whose record is saved, so that no removal is let through on a fresh hour.
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

// Restore counts the units of a saved record as spent, restores its trip, what waited and what
// an allowance released, and lets removals through again. A unit saved in a minute is counted
// as spent at the last instant of that minute (never later than now), so that it frees no
// earlier than it would have: the restore may delay a removal by up to a minute, never let one
// through early; and it is saved again in the same minute, so that restarts do not add up.
// Records older than the window, or with no unit, are ignored. The removals restored as waiting
// or released count as asked for now. Only the first Restore counts: the record of a process is
// restored once.
func (b *RemovalBudget) Restore(record BudgetRecord) {
	b.saveMu.Lock() // the order of Commit: saveMu, then mu
	defer b.saveMu.Unlock()
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	if b.restored {
		return
	}
	b.restored = true
	now := b.now()
	var add []time.Time
	for _, r := range record.Minutes {
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
	if !record.TrippedAt.IsZero() && b.trippedAt.IsZero() {
		b.trippedAt, b.trippedPerHour = record.TrippedAt, record.TrippedPerHour
	}
	for i, k := range record.Waiting {
		if _, ok := b.waiting[k]; !ok {
			// The order of the record is the order they started waiting in.
			since := record.TrippedAt.Add(time.Duration(i))
			if record.TrippedAt.IsZero() {
				since = now.Add(time.Duration(i))
			}
			b.waiting[k] = waitingRemoval{since: since, asked: now}
		}
	}
	for _, k := range record.Released {
		delete(b.waiting, k)
		b.released[k] = now
	}
	if b.allowToken == "" {
		b.allowToken = record.AllowToken
	}
	b.prune(now)
	// What was restored is saved already: the restore changes no version. Removals that asked
	// before it (and wait) did, and are saved by the next Commit.
}

func (b *RemovalBudget) record() BudgetRecord {
	var minutes []SpentMinute
	for _, at := range b.spent {
		m := at.UTC().Truncate(time.Minute)
		if n := len(minutes); n > 0 && minutes[n-1].Minute.Equal(m) {
			minutes[n-1].Count++
			continue
		}
		minutes = append(minutes, SpentMinute{Minute: m, Count: 1})
	}
	released := make([]string, 0, len(b.released))
	for k := range b.released {
		released = append(released, k)
	}
	slices.Sort(released)
	return BudgetRecord{
		Minutes:   minutes,
		TrippedAt: b.trippedAt, TrippedPerHour: b.trippedPerHour,
		Waiting:    firstN(b.waitingOldestFirst(""), MaxRecordedRemovals),
		Released:   firstN(released, MaxRecordedRemovals),
		AllowToken: b.allowToken,
	}
}

func firstN(keys []string, n int) []string {
	if len(keys) > n {
		return keys[:n]
	}
	return keys
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

// SetSave makes Commit save the budget's record with save.
func (b *RemovalBudget) SetSave(save SaveFunc) {
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	b.save = save
}

// Commit returns once every change so far (units spent, the trip, what waits, an allowance) is
// saved: call it after a Reserve that allowed a removal and before the removal's call, and
// Release the unit if it fails. Callers at the same time share one save. Without a SaveFunc it
// saves nothing; on a budget not restored yet it returns ErrNotRestored.
func (b *RemovalBudget) Commit(ctx context.Context) error {
	b.mu.Lock()
	want, restored := b.version, b.restored
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
	record, covers := b.record(), b.version
	b.mu.Unlock()
	if err := b.save(ctx, record); err != nil {
		return fmt.Errorf("saving the removal budget's record: %w", err)
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

// Allow grants the allow-removals annotation whose value is token: it releases at most n of
// the removals that wait now, oldest first (only those of namespace ns when ns is not empty),
// and nothing else: the rest of n lapses, and a removal that starts waiting later is not
// released by it. The same token is granted once: reading the same annotation again grants
// nothing. An empty token (the annotation is gone) forgets the last one, so that setting the
// same value again later is a new grant. A tripped budget with nothing left waiting is no
// longer tripped. It reports whether it granted, and how many removals it released.
func (b *RemovalBudget) Allow(token string, n int, ns string) (granted bool, released int) {
	b.mu.Lock()
	defer b.unlockNotify(len(b.waiting))
	if token == "" {
		if b.allowToken != "" {
			b.allowToken = ""
			b.version++
		}
		return false, 0
	}
	if token == b.allowToken || n <= 0 {
		return false, 0
	}
	now := b.now()
	b.prune(now)
	b.allowToken = token
	b.version++
	for _, k := range firstN(b.waitingOldestFirst(ns), n) {
		delete(b.waiting, k)
		b.released[k] = now
		released++
	}
	if len(b.waiting) == 0 && b.tripped() {
		b.untrip()
	}
	return true, released
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
