package tenant

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// createTimeout bounds one batched create, whose context is shared by several callers.
const createTimeout = 3 * time.Minute

type createResult struct {
	user *cipherscale.User
	err  error
}

type createRequest struct {
	user cipherscale.NewUser
	// before, when set, must succeed before the create is queued (CreateAsyncAfter).
	before func() error
	// queued is when the create was queued.
	queued time.Time
	// done receives the result, once, from the batcher's goroutine.
	done func(createResult)
}

// maxLingerWindows bounds, in batch windows, how long a partial batch waits for more creates
// while other calls of the tenant are in progress: 10s at the default window of 50ms. They hold
// the rate limit, so a request sent at once would only take a turn from them (and add one more
// request for the creates that arrive behind it); waiting costs the creates latency, never the
// tenant throughput. With no other call in progress a batch goes after one window, as before.
// In a fleet of 100 busy tenants at 10 requests/s, whose new users' first passes spread over
// about a minute, 40 windows (2 s), counted only while a call was in progress, made 17 create
// requests a tenant where one suffices: at 10 requests/s and 20 ms a call, a tenant at its limit
// has no call in progress most of the time. Objects waiting for a pass or for their turn say
// that it is busy (contended): then a batch waits up to maxStreamBatchAge.
const maxLingerWindows = 200

// DefaultBatchStreamGap is the gap between two creates below which they are taken for a stream
// (objects applied one after another: `kubectl apply -f dir/`, one kubectl per file, a GitOps
// sync wave): a batch then stays open while creates keep arriving, each within this gap of the
// one before, up to MaxCreateBatch users or maxStreamBatchAge.
const DefaultBatchStreamGap = time.Second

// maxStreamBatchAge bounds how long the oldest create of a batch waits while a stream keeps it
// open: 100 objects applied at kubectl's pace take 15 to 30 s, and a stream slower than that
// is better served by a few more requests than by making its first users wait longer.
const maxStreamBatchAge = 30 * time.Second

// maxCreatesInFlight bounds the create requests of one tenant in flight at once. Creates that
// arrive while one is in flight (waiting for the rate limit or for the API) join the next
// request, so batches grow with the load: a group commit.
const maxCreatesInFlight = 1

// batcher gathers concurrent creates into requests of at most MaxCreateBatch users: those that
// arrive within the batch window, and those that arrive while another request is in flight.
type batcher struct {
	t        *Tenant
	mu       sync.Mutex
	pending  []createRequest
	timer    *time.Timer
	timerAt  time.Time
	inflight int
	// lastAdd is when the last create was queued; streaming says it came within the stream gap
	// of the one before it (which may have gone in an earlier request).
	lastAdd   time.Time
	streaming bool
	// creating counts the creates of each normalized email queued or in flight.
	creating map[string]int
	// gated are the creates whose before step has not run yet; gating says runGates runs.
	gated  []createRequest
	gating bool
}

// Create creates one user, sharing a request with the creates that arrive within the batch
// window or while another create is in flight. A refused batch is split: the emails it names get
// its error, the rest are sent again, so nobody's create is lost or sent twice. A 409 means the
// email exists: the caller reads the tenant again (RefreshIfOlder) to find the user.
func (t *Tenant) Create(ctx context.Context, nu cipherscale.NewUser) (*cipherscale.User, error) {
	ch := make(chan createResult, 1)
	t.CreateAsync(nu, func(u *cipherscale.User, err error) { ch <- createResult{user: u, err: err} })
	select {
	case res := <-ch:
		return res.user, res.err
	case <-ctx.Done():
		// The request may still be sent; its result lands in the snapshot either way.
		return nil, ctx.Err()
	}
}

// CreateAsync queues the create of one user, as Create does, and returns at once: done is
// called once with the created user (already in the snapshot) or the error, from the batcher's
// goroutine, so it must not block. Until then Creating reports the email. A caller that holds no
// worker while its create waits lets the creates of many callers gather in one request.
func (t *Tenant) CreateAsync(nu cipherscale.NewUser, done func(*cipherscale.User, error)) {
	t.CreateAsyncAfter(nu, nil, done)
}

// CreateAsyncAfter is CreateAsync with a step that must succeed before the create may be sent
// (the save of the invitation record that counts it): before runs on the tenant's gate goroutine
// (runGates), so that no caller waits for it, and the creates queued meanwhile gather; its error
// is done's, and then nothing is sent. The email counts as creating from the call on.
func (t *Tenant) CreateAsyncAfter(nu cipherscale.NewUser, before func() error, done func(*cipherscale.User, error)) {
	n := cipherscale.NormalizeEmail(nu.Email)
	b := &t.batch
	req := createRequest{user: nu, before: before, done: func(res createResult) {
		// The email stops being "creating" before the caller hears: a pass the callback wakes
		// finds the result, never a create still counted.
		b.mu.Lock()
		if b.creating[n]--; b.creating[n] <= 0 {
			delete(b.creating, n)
		}
		b.mu.Unlock()
		done(res.user, res.err)
	}}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.creating == nil {
		b.creating = map[string]int{}
	}
	b.creating[n]++
	b.arriveLocked(&req)
	if before == nil {
		b.pending = append(b.pending, req)
		b.maybeFlushLocked()
		return
	}
	b.gated = append(b.gated, req)
	if !b.gating {
		b.gating = true
		go b.runGates()
	}
}

// runGates runs the before steps of the gated creates, one after another on one goroutine per
// tenant (however many creates wait), and queues the creates whose step succeeded, a wave at a
// time. The step of the first create of a wave waits for the save; those after it find their
// send already saved. While it runs, a partial batch waits for its wave (maybeFlushLocked).
func (b *batcher) runGates() {
	for {
		b.mu.Lock()
		reqs := b.gated
		b.gated = nil
		if len(reqs) == 0 {
			b.gating = false
			b.maybeFlushLocked()
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ok := reqs[:0:0]
		for _, r := range reqs {
			if err := r.before(); err != nil {
				r.done(createResult{err: err})
				continue
			}
			ok = append(ok, r)
		}
		b.mu.Lock()
		b.pending = append(b.pending, ok...)
		b.maybeFlushLocked()
		b.mu.Unlock()
	}
}

// Creating reports whether a create of email this process sent is queued or in flight. Its
// outcome is not known yet: a reader must wait for it, neither creating the email again nor
// concluding from the snapshot that there is no such user.
func (t *Tenant) Creating(email string) bool {
	b := &t.batch
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.creating[cipherscale.NormalizeEmail(email)] > 0
}

// arriveLocked notes when a create was asked for: its age, and whether it continues a stream,
// count from then, also while its before step waits.
func (b *batcher) arriveLocked(req *createRequest) {
	req.queued = time.Now()
	gap := b.t.opts.BatchStreamGap
	b.streaming = gap > 0 && !b.lastAdd.IsZero() && req.queued.Sub(b.lastAdd) < gap
	b.lastAdd = req.queued
}

// kick is called when the tenant's last call in progress ends: a batch that waited for the
// rate limit to free up goes now.
func (b *batcher) kick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.maybeFlushLocked()
}

// maybeFlushLocked sends the pending creates, unless a request is in flight (its completion
// calls this again) or a partial batch should wait: while other creates wait for their before
// step (runGates; at most maxStreamBatchAge); for the batch window after its oldest create
// was queued; then, while creates arrive as a stream (each within the stream gap of the one
// before), until the stream pauses for a gap (at most maxStreamBatchAge); and then, up to
// maxLingerWindows windows, until the tenant's other calls have been quiet for a window (kick
// re-evaluates when they end), and up to maxStreamBatchAge while its objects wait for a pass or
// their turn: a pause shorter than that is the gap between two calls of a busy tenant, not an
// idle one. A create after an idle spell is a lone one: it goes after one window.
func (b *batcher) maybeFlushLocked() {
	if len(b.pending) == 0 || b.inflight >= maxCreatesInFlight {
		return
	}
	window := b.t.opts.BatchWindow
	if len(b.pending) < cipherscale.MaxCreateBatch && window > 0 {
		age := time.Since(b.pending[0].queued)
		var wait time.Duration
		gap := b.t.opts.BatchStreamGap
		switch quiet := b.t.calls.quietFor(); {
		case b.gating && age < maxStreamBatchAge:
			// Creates wait for their before step (a save): runGates queues them together and
			// re-evaluates then; the timer only bounds the wait.
			wait = maxStreamBatchAge - age
		case age < window:
			wait = window - age
		case b.streaming && time.Since(b.lastAdd) < gap && age < maxStreamBatchAge:
			wait = min(gap-time.Since(b.lastAdd), maxStreamBatchAge-age)
		case quiet == 0 && age < maxLingerWindows*window:
			wait = maxLingerWindows*window - age
		case b.t.contended() && age < maxStreamBatchAge:
			// Between two calls of a tenant at its rate limit: its objects wait for a pass or
			// for their turn, and their creates may be among them; the tenant has other work
			// meanwhile. Checked again each window.
			wait = min(window, maxStreamBatchAge-age)
		case quiet < window && age < maxLingerWindows*window:
			wait = min(window-quiet, maxLingerWindows*window-age)
		}
		if wait > 0 {
			b.wakeAtLocked(time.Now().Add(wait))
			return
		}
	}
	b.flushLocked()
}

// wakeAtLocked makes sure maybeFlushLocked runs again at at, or earlier.
func (b *batcher) wakeAtLocked(at time.Time) {
	if b.timer != nil {
		if !b.timerAt.After(at) {
			return
		}
		b.timer.Stop()
	}
	b.timerAt = at
	var t *time.Timer
	t = time.AfterFunc(time.Until(at), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.timer != t {
			return // replaced by an earlier one, or stopped by a flush
		}
		b.timer = nil
		b.maybeFlushLocked()
	})
	b.timer = t
}

// flushLocked sends pending creates, as many requests as may be in flight.
func (b *batcher) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	for len(b.pending) > 0 && b.inflight < maxCreatesInFlight {
		n := min(len(b.pending), cipherscale.MaxCreateBatch)
		reqs := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.inflight++
		go func() {
			b.t.send(reqs)
			b.mu.Lock()
			defer b.mu.Unlock()
			b.inflight--
			b.maybeFlushLocked()
		}()
	}
	if len(b.pending) == 0 {
		b.pending = nil
	}
}

// send creates one batch and delivers each caller's result. The users a failed request did
// create (an earlier part of the call, or ones found in the list after an unknown outcome) are
// delivered to their callers like any others: a failure never throws a created user away.
func (t *Tenant) send(reqs []createRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), createTimeout)
	defer cancel()
	for len(reqs) > 0 {
		// Two callers creating one email share one item and its result.
		items := make([]cipherscale.NewUser, 0, len(reqs))
		seen := make(map[string]struct{}, len(reqs))
		for _, r := range reqs {
			n := cipherscale.NormalizeEmail(r.user.Email)
			if _, dup := seen[n]; !dup {
				seen[n] = struct{}{}
				items = append(items, r.user)
			}
		}
		users, err := t.api.CreateUsers(ctx, items)
		if err == nil {
			for _, r := range t.deliverCreated(items, reqs, users, true) {
				r.done(createResult{err: errors.New("the create response did not include the user")})
			}
			return
		}
		// Whatever was created is kept for its callers; the others share the error.
		reqs = t.deliverCreated(items, reqs, users, false)
		if len(reqs) == 0 {
			return
		}
		var ae *cipherscale.APIError
		if !errors.As(err, &ae) || ae.Status == 429 || ae.Status >= 500 {
			// No verdict on any one item: everyone left gets the error and requeues. The client
			// has already made sure an unknown outcome created nobody twice.
			for _, r := range reqs {
				r.done(createResult{err: err})
			}
			return
		}
		named := map[string]struct{}{}
		for _, e := range ae.Emails {
			named[cipherscale.NormalizeEmail(e)] = struct{}{}
		}
		var rest []createRequest
		for _, r := range reqs {
			if _, ok := named[cipherscale.NormalizeEmail(r.user.Email)]; ok {
				r.done(createResult{err: itemError(ae, r.user.Email)})
			} else {
				rest = append(rest, r)
			}
		}
		switch {
		case len(rest) == len(reqs) && len(reqs) == 1:
			reqs[0].done(createResult{err: err})
			return
		case len(rest) == len(reqs):
			// Refused without naming anyone: send each on its own to find who.
			for _, r := range reqs {
				t.send([]createRequest{r})
			}
			return
		}
		reqs = rest
	}
}

// deliverCreated records the created users in the snapshot and gives each caller whose email is
// among them its user. It returns the requests left without a user. byPosition says the answer
// is in request order (a complete answer), so that a user that came back without an email is
// found by its position.
func (t *Tenant) deliverCreated(items []cipherscale.NewUser, reqs []createRequest, users []cipherscale.User, byPosition bool) []createRequest {
	byEmail := make(map[string]*cipherscale.User, len(users))
	t.mu.Lock()
	for i := range users {
		if users[i].ID == "" {
			continue
		}
		u := copyUser(&users[i])
		t.storeLocked(u)
		if n := cipherscale.NormalizeEmail(u.Email); n != "" {
			byEmail[n] = u
		}
	}
	if byPosition {
		for i, it := range items {
			n := cipherscale.NormalizeEmail(it.Email)
			if _, ok := byEmail[n]; !ok && i < len(users) && users[i].ID != "" {
				byEmail[n] = copyUser(&users[i])
			}
		}
	}
	t.mu.Unlock()
	var left []createRequest
	for _, r := range reqs {
		u := byEmail[cipherscale.NormalizeEmail(r.user.Email)]
		if u == nil {
			left = append(left, r)
			continue
		}
		r.done(createResult{user: copyUser(u)})
	}
	return left
}

// itemError is the refusal of one item of a batch, naming only that item.
func itemError(ae *cipherscale.APIError, email string) error {
	c := *ae
	c.Emails = []string{email}
	return &c
}
