package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
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

	refresh singleflight.Group
	batch   batcher
	passes  passes

	// failedAt and failure remember the last failed read for failureMemory, so that while the
	// API is failing every retrying reconcile does not read the whole tenant again.
	failedAt time.Time
	failure  error
}

// failureMemory is how long a failed read of the tenant is answered from memory.
const failureMemory = time.Second

// New returns a Tenant over api.
func New(api cipherscale.API, opts Options) *Tenant {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 10 * time.Minute
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
func (t *Tenant) ResyncInterval() time.Duration { return t.opts.MaxAge }

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
	return t.valid && t.opts.Now().Sub(t.fetchedAt) < t.opts.MaxAge
}

// Refresh reads the tenant: whole, or, between full reads (Options.FullResyncInterval), only
// the users changed since the last read, when that brings the snapshot up to date. Concurrent
// callers share one read.
func (t *Tenant) Refresh(ctx context.Context) error {
	ch := t.refresh.DoChan("refresh", func() (any, error) {
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
		if t.opts.FullResyncInterval > 0 {
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

// AmbiguousEmailError says that the tenant holds several users whose emails differ only in
// case. The operator never picks one of them: a person must remove or rename all but one.
type AmbiguousEmailError struct {
	// IDs are the ids of the users with the email, sorted.
	IDs []string
}

func (e *AmbiguousEmailError) Error() string {
	return fmt.Sprintf("the tenant has %d users whose emails differ only in case (ids %s)", len(e.IDs), strings.Join(e.IDs, ", "))
}

// Lookup returns a copy of the user with this email (compared case-insensitively), or nil when
// the snapshot has none. Absence from the snapshot is a hint, never proof that a user is gone:
// a destructive decision confirms it by id (Get with a fresh read). Several users with the email
// are an *AmbiguousEmailError.
func (t *Tenant) Lookup(ctx context.Context, email string) (*cipherscale.User, error) {
	if err := t.ensureFresh(ctx); err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.lookupLocked(cipherscale.NormalizeEmail(email))
}

func (t *Tenant) lookupLocked(normalized string) (*cipherscale.User, error) {
	ids := t.byEmail[normalized]
	switch len(ids) {
	case 0:
		return nil, nil
	case 1:
		return copyUser(t.byID[ids[0]]), nil
	default:
		return nil, &AmbiguousEmailError{IDs: append([]string(nil), ids...)}
	}
}

// LookupMany returns copies of the users with these emails, keyed by normalized email; emails
// not in the snapshot are absent from the map. The first email held by several users is an
// *AmbiguousEmailError.
func (t *Tenant) LookupMany(ctx context.Context, emails []string) (map[string]*cipherscale.User, error) {
	if err := t.ensureFresh(ctx); err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]*cipherscale.User, len(emails))
	for _, e := range emails {
		n := cipherscale.NormalizeEmail(e)
		u, err := t.lookupLocked(n)
		if err != nil {
			return nil, err
		}
		if u != nil {
			out[n] = u
		}
	}
	return out, nil
}

// FetchedAt returns when the snapshot's read of the tenant started: the age of what Lookup,
// LookupMany and UsersInGroup answer. Zero before the first read.
func (t *Tenant) FetchedAt() time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.fetchedAt
}

// RefreshIfOlder reads the tenant again unless the snapshot's read started at or after since,
// so that callers that need data newer than an event (a refused create, a member reported
// missing) share one read. A read that failed a moment ago is not repeated.
func (t *Tenant) RefreshIfOlder(ctx context.Context, since time.Time) error {
	t.mu.RLock()
	fresh := t.valid && !t.fetchedAt.Before(since)
	t.mu.RUnlock()
	if fresh {
		return nil
	}
	if err := t.recentFailure(); err != nil {
		return err
	}
	return t.Refresh(ctx)
}

// SharedUsers returns copies of every user of the snapshot the objects' reconciles share,
// read again (one read, shared with them) when its read started before since, and when that
// read started. While the snapshot was never filled (no object of the tenant needed it yet) it
// reads nothing and ok is false: the caller reads for itself, and a read made only to check a
// key does not fill the snapshot objects would then act on.
func (t *Tenant) SharedUsers(ctx context.Context, since time.Time) (users []cipherscale.User, readAt time.Time, ok bool, err error) {
	t.mu.RLock()
	valid := t.valid
	t.mu.RUnlock()
	if !valid {
		return nil, time.Time{}, false, nil
	}
	if err := t.RefreshIfOlder(ctx, since); err != nil {
		return nil, time.Time{}, true, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	users = make([]cipherscale.User, 0, len(t.byID))
	for _, u := range t.byID {
		users = append(users, *copyUser(u))
	}
	return users, t.fetchedAt, true, nil
}

// Get returns a copy of the user with this id and when that copy was read: from the snapshot
// when it holds the user, else by a GET by id, whose answer is kept in the snapshot. With fresh,
// the GET is always made: a decision that removes access rests on it. A user that the API says
// does not exist (404) is ErrUserGone.
func (t *Tenant) Get(ctx context.Context, id string, fresh bool) (*cipherscale.User, time.Time, error) {
	if !fresh {
		if err := t.ensureFresh(ctx); err != nil {
			return nil, time.Time{}, err
		}
		t.mu.RLock()
		u, ok := t.byID[id]
		at := t.fetchedAt
		t.mu.RUnlock()
		if ok {
			return copyUser(u), at, nil
		}
	}
	at := t.opts.Now()
	u, err := t.api.GetUser(ctx, id)
	if cipherscale.IsNotFound(err) {
		t.forget(id)
		return nil, at, fmt.Errorf("%w: reading user %s: %w", ErrUserGone, id, err)
	}
	if err != nil {
		return nil, at, fmt.Errorf("reading user %s: %w", id, err)
	}
	if u == nil || u.ID == "" {
		return nil, at, fmt.Errorf("reading user %s: the answer holds no user", id)
	}
	t.store(u)
	return copyUser(u), at, nil
}

// UsersInGroup returns copies of the users who are in the group.
func (t *Tenant) UsersInGroup(ctx context.Context, groupID string) ([]cipherscale.User, error) {
	if err := t.ensureFresh(ctx); err != nil {
		return nil, err
	}
	gid := normalizeID(groupID)
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []cipherscale.User
	for _, u := range t.byID {
		for _, g := range u.Groups {
			if normalizeID(g.ID) == gid {
				out = append(out, *copyUser(u))
				break
			}
		}
	}
	return out, nil
}

// Len returns the number of users in the snapshot.
func (t *Tenant) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byID)
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

// mutate applies fn to the snapshot's copy of a user after a write whose response has no body.
func (t *Tenant) mutate(id string, fn func(u *cipherscale.User)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.byID[id]
	if !ok {
		return
	}
	c := copyUser(u)
	fn(c)
	c.UpdatedAt = t.opts.Now()
	t.storeLocked(c)
}

func (t *Tenant) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u, ok := t.byID[id]; ok {
		t.unindexLocked(u)
		delete(t.byID, id)
	}
	t.writeSeq++
	t.touched[id] = t.writeSeq
}

// ErrUserGone is returned by a write to a user that no longer exists in the tenant.
var ErrUserGone = errors.New("the user no longer exists in the tenant")

// afterWrite interprets a write's error. A 404 from a write to a user may mean the user is gone
// or that a role or group it named is unknown: one read of the user tells which. A user that is
// gone is dropped from the snapshot and reported as ErrUserGone; any other error is returned.
func (t *Tenant) afterWrite(ctx context.Context, id string, err error) error {
	if err == nil || !cipherscale.IsNotFound(err) {
		return err
	}
	if _, gerr := t.api.GetUser(ctx, id); cipherscale.IsNotFound(gerr) {
		t.forget(id)
		return fmt.Errorf("%w: %w", ErrUserGone, err)
	} else if gerr != nil {
		return gerr
	}
	return err
}

// UpdateProfile writes the profile and records the response.
func (t *Tenant) UpdateProfile(ctx context.Context, id string, p cipherscale.ProfileUpdate) error {
	u, err := t.api.UpdateProfile(ctx, id, p)
	if err = t.afterWrite(ctx, id, err); err != nil {
		return err
	}
	if u != nil && u.ID != "" {
		t.store(u)
		return nil
	}
	t.mutate(id, func(u *cipherscale.User) {
		if p.FirstName != nil {
			u.FirstName = *p.FirstName
		}
		if p.LastName != nil {
			u.LastName = *p.LastName
		}
		if p.Image != nil {
			u.Image = *p.Image
		}
	})
	return nil
}

// PatchRoles adds and removes direct roles and records the result.
func (t *Tenant) PatchRoles(ctx context.Context, id string, p cipherscale.RolesPatch) error {
	err := t.afterWrite(ctx, id, t.api.PatchRoles(ctx, id, p))
	if err != nil {
		return err
	}
	t.mutate(id, func(u *cipherscale.User) {
		removed := idSet(p.RemovedRoles)
		roles := u.Roles[:0:0]
		have := map[string]struct{}{}
		for _, r := range u.Roles {
			n := normalizeID(r.ID)
			if _, gone := removed[n]; gone {
				continue
			}
			have[n] = struct{}{}
			roles = append(roles, r)
		}
		for _, a := range p.AddedRoles {
			if _, ok := have[normalizeID(a)]; !ok {
				roles = append(roles, cipherscale.Role{ID: a, Name: t.roleNames[normalizeID(a)]})
				have[normalizeID(a)] = struct{}{}
			}
		}
		u.Roles = roles
	})
	return nil
}

// GroupRefused reports whether an add of a user to this group alone was refused with a 404,
// while the user exists, less than MaxAge ago: the tenant has no such group. It lets a
// membership whose pairs another reconciler writes report the unknown group, and spares that
// reconciler a refused call on every pass; a successful add clears it.
func (t *Tenant) GroupRefused(groupID string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	at, ok := t.refusedGroups[normalizeID(groupID)]
	return ok && t.opts.Now().Sub(at) < t.opts.MaxAge
}

// GroupSeen reports whether the API has reported the group on a user or accepted an add to it
// (so it existed then) and no add to it was refused since. A hint only: the group may have been
// deleted since.
func (t *Tenant) GroupSeen(groupID string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, seen := t.seenGroups[normalizeID(groupID)]
	_, refused := t.refusedGroups[normalizeID(groupID)]
	return seen && !refused
}

func (t *Tenant) setGroupRefused(groupID string, refused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if refused {
		t.refusedGroups[normalizeID(groupID)] = t.opts.Now()
	} else {
		delete(t.refusedGroups, normalizeID(groupID))
	}
}

// AddToGroups adds the user to groups and records the result.
func (t *Tenant) AddToGroups(ctx context.Context, id string, groupIDs []string) error {
	if len(groupIDs) == 0 {
		return nil
	}
	if err := t.afterWrite(ctx, id, t.api.AddToGroups(ctx, id, groupIDs)); err != nil {
		if len(groupIDs) == 1 && cipherscale.IsNotFound(err) && !errors.Is(err, ErrUserGone) {
			t.setGroupRefused(groupIDs[0], true)
		}
		return err
	}
	for _, g := range groupIDs {
		t.setGroupRefused(g, false)
	}
	t.mu.Lock()
	for _, g := range groupIDs {
		t.seenGroups[normalizeID(g)] = struct{}{}
	}
	t.mu.Unlock()
	t.mutate(id, func(u *cipherscale.User) {
		have := map[string]struct{}{}
		for _, g := range u.Groups {
			have[normalizeID(g.ID)] = struct{}{}
		}
		for _, g := range groupIDs {
			if _, ok := have[normalizeID(g)]; !ok {
				u.Groups = append(u.Groups, cipherscale.Group{ID: g, Name: t.groupNames[normalizeID(g)]})
				have[normalizeID(g)] = struct{}{}
			}
		}
	})
	return nil
}

// RemoveFromGroup removes the user from a group and records the result.
func (t *Tenant) RemoveFromGroup(ctx context.Context, id, groupID string) error {
	if err := t.afterWrite(ctx, id, t.api.RemoveFromGroup(ctx, id, groupID)); err != nil {
		return err
	}
	t.mutate(id, func(u *cipherscale.User) {
		gid := normalizeID(groupID)
		groups := u.Groups[:0:0]
		for _, g := range u.Groups {
			if normalizeID(g.ID) != gid {
				groups = append(groups, g)
			}
		}
		u.Groups = groups
	})
	return nil
}

// Deactivate deactivates the user and records the response.
func (t *Tenant) Deactivate(ctx context.Context, id string) error {
	u, err := t.api.DeactivateUser(ctx, id)
	if err = t.afterWrite(ctx, id, err); err != nil {
		return err
	}
	if u != nil && u.ID != "" {
		t.store(u)
	} else {
		t.mutate(id, func(u *cipherscale.User) { u.Status = cipherscale.StatusInactive })
	}
	return nil
}

// Reactivate reactivates the user and records the response.
func (t *Tenant) Reactivate(ctx context.Context, id string) error {
	u, err := t.api.ReactivateUser(ctx, id)
	if err = t.afterWrite(ctx, id, err); err != nil {
		return err
	}
	if u != nil && u.ID != "" {
		t.store(u)
		return nil
	}
	// No user in the answer: read it by id rather than the whole tenant.
	_, _, err = t.Get(ctx, id, true)
	return err
}

// ResendInvitation resends the invitation of a pending user. A 409 (not pending any more) means
// the snapshot was wrong about the user: it is read again by id, and the 409 returned.
func (t *Tenant) ResendInvitation(ctx context.Context, id string) error {
	err := t.afterWrite(ctx, id, t.api.ResendInvitation(ctx, id))
	if cipherscale.IsConflict(err) {
		if _, _, gerr := t.Get(ctx, id, true); gerr != nil {
			return errors.Join(err, gerr)
		}
	}
	return err
}

// Delete deletes the user. A user already gone counts as done.
func (t *Tenant) Delete(ctx context.Context, id string) error {
	if err := t.api.DeleteUser(ctx, id); err != nil && !cipherscale.IsNotFound(err) {
		return err
	}
	t.forget(id)
	return nil
}

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
