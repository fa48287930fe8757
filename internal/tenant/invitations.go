package tenant

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// InvitationWindow is the window of the invitation cap.
const InvitationWindow = 24 * time.Hour

// MaxRecordedAddresses bounds the addresses an invitation log's record holds (the tenant's
// status.invitationsSent): past it, the addresses whose last send is oldest are left out of the
// record (this process still counts them; a restart forgets them).
const MaxRecordedAddresses = 2000

// maxSendsPerAddress bounds the send times kept per address (the CRD's maxItems).
const maxSendsPerAddress = 100

// InvitationLog counts the invitations a tenant sent to each email address in the last 24
// hours, whichever object asked for them (a create sends one, a resend another), so that the
// tenant's cap holds when an object is deleted and re-created. Addresses are kept as hashes
// (HashEmail): the record, saved in the tenant object's status, holds no address. It is safe
// for concurrent use; like the removal budget, it saves its record before each send it allows
// (Commit) and a restarted operator restores it before any send.
type InvitationLog struct {
	now    func() time.Time
	tenant string

	mu       sync.Mutex
	limit    int
	sent     map[string][]time.Time // by hashed address, oldest first
	restored bool
	version  uint64

	saveMu sync.Mutex
	save   InvitationSaveFunc
	saved  uint64
	// nextSave is the earliest the next save starts (saveSpacingPerAddress).
	nextSave time.Time
}

// InvitationSends are the sends to one (hashed) address.
type InvitationSends struct {
	Email string // HashEmail of the address
	Times []time.Time
}

// InvitationSaveFunc writes an invitation log's record, replacing the one saved before.
type InvitationSaveFunc func(ctx context.Context, record []InvitationSends) error

// NewInvitationLog returns the log of the tenant named tenant (Key.String), with a cap of limit
// invitations per address in 24 hours (0 or less: no cap), over the clock now.
func NewInvitationLog(tenant string, limit int, now func() time.Time) *InvitationLog {
	if now == nil {
		now = time.Now
	}
	return &InvitationLog{now: now, tenant: tenant, limit: max(limit, 0), sent: map[string][]time.Time{}, restored: true}
}

// HashEmail is how the log names an address: base64url (no padding) of the first 16 bytes of
// SHA-256 over the tenant and the normalized address. A plain hash, not one keyed by the API
// key: the record must outlive a rotated key (a rotation is when the cap matters most), and the
// readers of a tenant's status administer the tenant and may list its users anyway; the hash
// keeps addresses out of the status, its dumps and backups.
func HashEmail(tenant, email string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + strings.ToLower(strings.TrimSpace(email))))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// SetLimit sets the cap (spec.invitations.maxPerDay of the tenant).
func (l *InvitationLog) SetLimit(limit int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = max(limit, 0)
}

// Limit returns the cap; 0: no cap.
func (l *InvitationLog) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// ExpectRestore makes every Reserve fail with ErrNotRestored until Restore is called.
func (l *InvitationLog) ExpectRestore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.restored = false
}

// Restored reports whether the log is restored (or never expected a restore).
func (l *InvitationLog) Restored() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.restored
}

// Restore adds a saved record to the log, and lets sends through again. Only the first Restore
// counts.
func (l *InvitationLog) Restore(record []InvitationSends) {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.restored {
		return
	}
	l.restored = true
	for _, r := range record {
		l.sent[r.Email] = mergeSends(l.sent[r.Email], r.Times)
	}
	l.prune(l.now())
}

// SetSave makes Commit save the log's record with save.
func (l *InvitationLog) SetSave(save InvitationSaveFunc) {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.save = save
}

// InvitationReservation is the log's answer to Reserve.
type InvitationReservation struct {
	// OK is true when the invitation may be sent now: it is recorded at At.
	OK bool
	At time.Time
	// Until is, when it may not, when the oldest send counted leaves the window.
	Until time.Time
	// Count is how many invitations were sent to the address in the window, this one included
	// when OK.
	Count int
}

// Reserve asks to send one invitation to email now. The sends counted are the log's for the
// address and also, merged in, the ones given (the object's own record of its sends: a second
// memory that survives where the log's record was not saved). Under the cap, the send is
// recorded now and OK; Commit before sending, and Cancel if it was certainly not sent.
func (l *InvitationLog) Reserve(email string, also []time.Time) (InvitationReservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.restored {
		return InvitationReservation{}, ErrInvitationsNotRestored
	}
	now := l.now()
	l.prune(now)
	h := HashEmail(l.tenant, email)
	sends := recentSends(mergeSends(l.sent[h], also), now)
	if l.limit > 0 && len(sends) >= l.limit {
		return InvitationReservation{Until: sends[len(sends)-l.limit].Add(InvitationWindow), Count: len(sends)}, nil
	}
	sends = append(sends, now)
	if len(sends) > maxSendsPerAddress {
		sends = sends[len(sends)-maxSendsPerAddress:]
	}
	l.sent[h] = sends
	l.version++
	return InvitationReservation{OK: true, At: now, Count: len(sends)}, nil
}

// Cancel forgets a send reserved at at that was certainly not made (refused before it was
// sent, or answered with an error that sent nothing).
func (l *InvitationLog) Cancel(email string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := HashEmail(l.tenant, email)
	sends := l.sent[h]
	if i := slices.IndexFunc(sends, at.Equal); i >= 0 {
		l.sent[h] = slices.Delete(slices.Clone(sends), i, i+1)
		if len(l.sent[h]) == 0 {
			delete(l.sent, h)
		}
		l.version++
	}
}

// Sends returns the sends to email in the window, oldest first, at most keep (the newest).
func (l *InvitationLog) Sends(email string, keep int) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := recentSends(l.sent[HashEmail(l.tenant, email)], l.now())
	if keep > 0 && len(s) > keep {
		s = s[len(s)-keep:]
	}
	return s
}

// saveSpacingPerAddress spaces the saves of a large record: after a save of n addresses the next
// one waits n times this (500 ms at MaxRecordedAddresses), and the sends reserved meanwhile share
// it. Each save writes the whole record into the tenant object's status (about 72 bytes an
// address), and every replica's cache decodes it again: saved once per create, a tenant creating
// thousands of users kept kube-apiserver and the operator busy rewriting 144 KB objects back to
// back (the N=10,000 bench took twice the bound's time). Spaced, it is at most about 300 KB a
// second, and a small record is saved at once.
const saveSpacingPerAddress = 250 * time.Microsecond

// Commit returns once every send reserved so far is saved; callers at the same time share one
// save, and so do those that come while a large record's save waits for its spacing. Without a
// SaveFunc it saves nothing.
func (l *InvitationLog) Commit(ctx context.Context) error {
	l.mu.Lock()
	want, restored := l.version, l.restored
	l.mu.Unlock()
	if !restored {
		return ErrInvitationsNotRestored
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	if l.save == nil || l.saved >= want {
		return nil
	}
	if wait := time.Until(l.nextSave); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("saving the invitations sent: %w", ctx.Err())
		}
	}
	l.mu.Lock()
	l.prune(l.now())
	record, covers := l.record(), l.version
	l.mu.Unlock()
	if err := l.save(ctx, record); err != nil {
		return fmt.Errorf("saving the invitations sent: %w", err)
	}
	l.saved = covers
	l.nextSave = time.Now().Add(time.Duration(len(record)) * saveSpacingPerAddress)
	return nil
}

// Record returns what a save writes: per address, the sends of the window, the addresses
// sorted by hash, at most MaxRecordedAddresses (those sent to last).
func (l *InvitationLog) Record() []InvitationSends {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(l.now())
	return l.record()
}

func (l *InvitationLog) record() []InvitationSends {
	out := make([]InvitationSends, 0, len(l.sent))
	for h, s := range l.sent {
		out = append(out, InvitationSends{Email: h, Times: slices.Clone(s)})
	}
	if len(out) > MaxRecordedAddresses {
		slices.SortFunc(out, func(a, b InvitationSends) int {
			return b.Times[len(b.Times)-1].Compare(a.Times[len(a.Times)-1])
		})
		out = out[:MaxRecordedAddresses]
	}
	slices.SortFunc(out, func(a, b InvitationSends) int { return strings.Compare(a.Email, b.Email) })
	return out
}

// prune forgets the sends that left the window; mu is held.
func (l *InvitationLog) prune(now time.Time) {
	for h, s := range l.sent {
		r := recentSends(s, now)
		switch {
		case len(r) == 0:
			delete(l.sent, h)
		case len(r) != len(s):
			l.sent[h] = r
		}
	}
}

// ErrInvitationsNotRestored is the error of Reserve and Commit while a log that expects a
// restore has not been restored yet.
var ErrInvitationsNotRestored = fmt.Errorf("the invitations sent in the last 24 hours are not restored yet")

// recentSends returns the sends of the window before now, oldest first.
func recentSends(sent []time.Time, now time.Time) []time.Time {
	var out []time.Time
	for _, t := range sent {
		if now.Sub(t) < InvitationWindow {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// mergeSends merges two records of sends: a send in both (the same second: records keep
// seconds) counts once.
func mergeSends(a, b []time.Time) []time.Time {
	out := slices.Clone(a)
	for _, t := range b {
		if !slices.ContainsFunc(out, func(u time.Time) bool { return u.Truncate(time.Second).Equal(t.Truncate(time.Second)) }) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}
