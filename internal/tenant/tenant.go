package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// Options configure a Tenant.
type Options struct {
	// MaxAge is how old the snapshot may be before a lookup refreshes it: the resync interval.
	MaxAge time.Duration
	// BatchWindow is how long a create waits for others to share its request. Zero sends at once.
	// While other calls of the tenant are in progress (they hold its rate limit), a partial batch
	// waits longer, up to maxLingerWindows windows, as sending it would only take their turn.
	BatchWindow time.Duration
	// BatchStreamGap: creates that arrive each within this gap of the one before are a stream,
	// and a batch stays open while they keep coming (up to 100 users, or 30s for its oldest).
	// DefaultBatchStreamGap when zero and BatchWindow is set; negative turns it off.
	BatchStreamGap time.Duration
	// MaxPasses bounds the reconciles of the tenant's objects in progress at once (Enter); 0
	// sets no bound.
	MaxPasses int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RemovalBudget is the tenant's removal budget; nil gives a budget without limit.
	RemovalBudget *RemovalBudget
	// Key is the tenant's API key, from which the key of its proofs of identity is derived
	// (ProofKey); without it no proof can be made or verified.
	Key cipherscale.KeySource
	// Invitations is the tenant's invitation log; nil gives one in memory, without a cap.
	Invitations *InvitationLog
	// FullResyncInterval is how often the tenant is read whole; between full reads, a read
	// asks only for the users changed since the last one (delta.go). Zero: every read is whole.
	FullResyncInterval time.Duration
}

// Tenant is the shared view of one tenant. It is safe for concurrent use.
type Tenant struct {
	api  cipherscale.API
	opts Options
	// calls is api, counting the calls in progress (the batcher waits while there are some).
	calls *busyAPI

	mu   sync.RWMutex
	byID map[string]*cipherscale.User
	// byEmail holds, per normalized email, the ids of the users with that email: one, except
	// when the tenant holds two users whose emails differ only in case.
	byEmail   map[string][]string
	fetchedAt time.Time
	valid     bool
	// fullAt is when the last full read began, and mark where the next incremental read starts.
	fullAt time.Time
	mark   watermark
	// writeSeq counts local writes; touched records, per user id, the sequence of its last
	// local write, so that a refresh that started before a write does not undo it.
	writeSeq uint64
	touched  map[string]uint64
	// refusedGroups holds the groups an add to which was refused as unknown (see GroupRefused).
	refusedGroups map[string]time.Time
	// roleNames and groupNames hold, by normalized id, the names of the roles and groups the
	// tenant reported on its users, so that a role or group added locally carries its name.
	roleNames, groupNames map[string]string
	// seenGroups holds the groups the API reported on a user or accepted in an add.
	seenGroups map[string]struct{}
	// groups keeps what members of each group showed of its roles (roles.go).
	groups groupRoles
	// strs interns the strings users share (compact.go).
	strs map[string]string
	// resync and fullResync are Options.MaxAge and FullResyncInterval, which SetIntervals
	// changes in place.
	resync, fullResync atomic.Int64

	refresh singleflight.Group
	// reading is true while a read of the tenant (Refresh) is in flight.
	reading atomic.Bool
	batch   batcher
	passes  passes

	// failedAt and failure remember the last failed read for failureMemory, so that while the
	// API is failing every retrying reconcile does not read the whole tenant again.
	failedAt time.Time
	failure  error
}

// defaultMaxAge is the resync interval of a tenant configured with none.
const defaultMaxAge = 10 * time.Minute

// failureMemory is how long a failed read of the tenant is answered from memory.
const failureMemory = time.Second

// New returns a Tenant over api.
func New(api cipherscale.API, opts Options) *Tenant {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.RemovalBudget == nil {
		opts.RemovalBudget = NewRemovalBudget(0, opts.Now)
	}
	if opts.Invitations == nil {
		opts.Invitations = NewInvitationLog("", 0, opts.Now)
	}
	switch {
	case opts.BatchWindow <= 0 || opts.BatchStreamGap < 0:
		opts.BatchStreamGap = 0
	case opts.BatchStreamGap == 0:
		opts.BatchStreamGap = DefaultBatchStreamGap
	}
	calls := &busyAPI{API: api}
	t := &Tenant{
		api:           calls,
		calls:         calls,
		opts:          opts,
		byID:          map[string]*cipherscale.User{},
		byEmail:       map[string][]string{},
		touched:       map[string]uint64{},
		refusedGroups: map[string]time.Time{},
		roleNames:     map[string]string{},
		groupNames:    map[string]string{},
		seenGroups:    map[string]struct{}{},
	}
	t.SetIntervals(opts.MaxAge, opts.FullResyncInterval)
	t.batch.t = t
	t.passes.max = opts.MaxPasses
	calls.idle = t.batch.kick
	return t
}

// API returns the client the tenant calls.
func (t *Tenant) API() cipherscale.API { return t.api }

// RateLimit returns the requests per second of the tenant's client (the metric
// cipherscale_api_rate_limit); ok is false when the client reports none.
func (t *Tenant) RateLimit() (qps float64, ok bool) {
	l, ok := t.calls.API.(interface{ RateLimit() (float64, int) })
	if !ok {
		return 0, false
	}
	qps, _ = l.RateLimit()
	return qps, true
}

// RemovalBudget returns the tenant's removal budget: every delete or deactivate call against
// the tenant spends it.
func (t *Tenant) RemovalBudget() *RemovalBudget { return t.opts.RemovalBudget }

// ResyncInterval is how old the snapshot may be (Options.MaxAge): the tenant's resync interval,
// which is also how often its objects are compared with it when nothing changed.
func (t *Tenant) ResyncInterval() time.Duration { return t.maxAge() }

// SetIntervals changes the tenant's resync and full resync intervals in place (a tenant object
// whose spec changed only them): the snapshot, its watermark and the client stay.
func (t *Tenant) SetIntervals(resync, fullResync time.Duration) {
	if resync <= 0 {
		resync = defaultMaxAge
	}
	t.resync.Store(int64(resync))
	t.fullResync.Store(int64(fullResync))
}

func (t *Tenant) maxAge() time.Duration             { return time.Duration(t.resync.Load()) }
func (t *Tenant) fullResyncInterval() time.Duration { return time.Duration(t.fullResync.Load()) }

// Invitations returns the tenant's invitation log: every create and resend of an invitation
// is counted there, per address.
func (t *Tenant) Invitations() *InvitationLog { return t.opts.Invitations }

// ensureFresh refreshes the snapshot when it is invalid or older than MaxAge. Concurrent
// callers share one refresh, and a caller that saw the snapshot stale just before another
// refresh finished checks again inside the shared call instead of reading the tenant twice.
func (t *Tenant) ensureFresh(ctx context.Context) error {
	if t.fresh() {
		return nil
	}
	if err := t.recentFailure(); err != nil {
		return err
	}
	ch := t.refresh.DoChan("ensure-fresh", func() (any, error) {
		if t.fresh() {
			return nil, nil
		}
		return nil, t.Refresh(context.WithoutCancel(ctx))
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recentFailure returns the error of a read that failed less than failureMemory ago.
func (t *Tenant) recentFailure() error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.failure != nil && t.opts.Now().Sub(t.failedAt) < failureMemory {
		return t.failure
	}
	return nil
}

func (t *Tenant) fresh() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.valid && t.opts.Now().Sub(t.fetchedAt) < t.maxAge()
}

// Refresh reads the tenant: whole, or, between full reads (Options.FullResyncInterval), only
// the users changed since the last read, when that brings the snapshot up to date. Concurrent
// callers share one read.
func (t *Tenant) Refresh(ctx context.Context) error {
	ch := t.refresh.DoChan("refresh", func() (any, error) {
		t.reading.Store(true)
		defer t.reading.Store(false)
		started := t.opts.Now()
		t.mu.RLock()
		startSeq := t.writeSeq
		mark, incremental := t.incrementalLocked(started)
		known := len(t.byID)
		t.mu.RUnlock()
		// The read is shared: one caller's cancellation must not fail the others.
		// It waits for the rate limiter in place: a shared read takes no caller's turn.
		rctx, cancel := context.WithTimeout(cipherscale.WithTurn(context.WithoutCancel(ctx), ""), 5*time.Minute)
		defer cancel()
		if incremental {
			users, total, next, err := t.readChanged(rctx, mark, known)
			switch {
			case err == nil && t.applyChanged(users, total, next, started, startSeq):
				return nil, nil
			case err != nil && !errors.Is(err, errNeedFull):
				return nil, t.failed(err)
			}
		}
		var err error
		mark = watermark{}
		if t.fullResyncInterval() > 0 {
			if mark, err = t.topUpdated(rctx); err != nil {
				return nil, t.failed(err)
			}
		}
		users, err := t.api.ListUsers(rctx)
		if err != nil {
			return nil, t.failed(fmt.Errorf("listing tenant users: %w", err))
		}
		t.install(users, started, startSeq, mark)
		return nil, nil
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failed remembers a failed read for failureMemory, and returns its error.
func (t *Tenant) failed(err error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failedAt, t.failure = t.opts.Now(), err
	return err
}

func (t *Tenant) install(users []cipherscale.User, started time.Time, startSeq uint64, mark watermark) {
	t.mu.Lock()
	defer t.mu.Unlock()
	byID := make(map[string]*cipherscale.User, len(users))
	for i := range users {
		u := &users[i]
		if seq, ok := t.touched[u.ID]; ok && seq > startSeq {
			continue // written since the read started: the local copy is newer
		}
		byID[u.ID] = t.compactLocked(u)
	}
	for id, seq := range t.touched {
		if seq > startSeq {
			if u, ok := t.byID[id]; ok {
				byID[id] = u
			}
			continue
		}
		delete(t.touched, id)
	}
	byEmail := make(map[string][]string, len(byID))
	for id, u := range byID {
		n := cipherscale.NormalizeEmail(u.Email)
		byEmail[n] = append(byEmail[n], id)
		t.learnNamesLocked(u)
	}
	for n, ids := range byEmail {
		if len(ids) > 1 {
			sort.Strings(ids)
			byEmail[n] = ids
		}
	}
	t.byID, t.byEmail = byID, byEmail
	t.fetchedAt, t.valid = started, true
	t.fullAt, t.mark = started, mark
	t.failure = nil
}

// store records a user as the latest local write returned it.
func (t *Tenant) store(u *cipherscale.User) {
	if u == nil || u.ID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.storeLocked(copyUser(u))
}

func (t *Tenant) storeLocked(u *cipherscale.User) {
	u = t.compactLocked(u)
	if old, ok := t.byID[u.ID]; ok {
		t.unindexLocked(old)
	}
	t.writeSeq++
	t.touched[u.ID] = t.writeSeq
	t.byID[u.ID] = u
	t.learnNamesLocked(u)
	t.indexLocked(u)
}

// indexLocked adds u's id to the email index.
func (t *Tenant) indexLocked(u *cipherscale.User) {
	n := cipherscale.NormalizeEmail(u.Email)
	t.byEmail[n] = append(t.byEmail[n], u.ID)
	sort.Strings(t.byEmail[n])
}

// learnNamesLocked records the names of u's roles and groups.
func (t *Tenant) learnNamesLocked(u *cipherscale.User) {
	for _, r := range u.Roles {
		if r.Name != "" {
			t.roleNames[normalizeID(r.ID)] = r.Name
		}
	}
	for _, g := range u.Groups {
		if g.ID != "" {
			t.seenGroups[normalizeID(g.ID)] = struct{}{}
		}
		if g.Name != "" {
			t.groupNames[normalizeID(g.ID)] = g.Name
		}
	}
}

// unindexLocked removes u's id from the email index.
func (t *Tenant) unindexLocked(u *cipherscale.User) {
	n := cipherscale.NormalizeEmail(u.Email)
	ids := slices.DeleteFunc(slices.Clone(t.byEmail[n]), func(id string) bool { return id == u.ID })
	if len(ids) == 0 {
		delete(t.byEmail, n)
	} else {
		t.byEmail[n] = ids
	}
}

// ErrUserGone is returned by a write to a user that no longer exists in the tenant.
var ErrUserGone = errors.New("the user no longer exists in the tenant")

func copyUser(u *cipherscale.User) *cipherscale.User {
	if u == nil {
		return nil
	}
	c := *u
	c.Roles = append(cipherscale.RoleList(nil), u.Roles...)
	c.Groups = append([]cipherscale.Group(nil), u.Groups...)
	c.Devices = nil // never used by the operator; not kept twice
	return &c
}

func normalizeID(id string) string { return cipherscale.NormalizeID(id) }

func idSet(ids []string) map[string]struct{} {
	s := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		s[normalizeID(id)] = struct{}{}
	}
	return s
}
