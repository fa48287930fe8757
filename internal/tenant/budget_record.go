// The record of a removal budget: what it saves, so that a restart or a leader change keeps its
// last hour, its trip, what waits and what an allowance released; and how it restores them.

package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

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

// restoreRetry is how soon a removal that waits for the restore asks again.
const restoreRetry = time.Second

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
