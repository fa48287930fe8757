package cipherscale

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// The first call made with a turn key (WithTurn) never holds its caller while the client's rate
// limiter makes it wait: it reserves the next free token under its key and fails with a
// *TurnError that says when that token comes. The caller (a reconcile) gives its worker back and
// comes again at that time, when the call made under the same key takes the reserved token. So
// a tenant whose rate limit is far smaller than its work holds no worker while its calls wait
// their turn, and its objects are served in the order they asked. Once a ctx's call has had its
// turn, the later calls of that ctx (the rest of one reconcile) wait in place: a pass that gave
// up its turn at its second call would make its first one again at its next turn, and never get
// further. The caller bounds how many such passes run at once (tenant.Enter).
const (
	// maxTurnWait is the longest a call with a turn key waits for the limiter in place: shorter
	// than a pass through the work queue is worth.
	maxTurnWait = 50 * time.Millisecond
	// maxTurnHold is the furthest a turn is reserved ahead; a wait longer than that is not
	// reserved (the token goes back) and the caller comes back then to ask again.
	maxTurnHold = 2 * time.Minute
	// turnExpiry is how long a reserved turn is kept after its time for a caller that did not
	// come back (its object was deleted, or needed no call any more).
	turnExpiry = time.Minute
)

// TurnError says that a call made with a turn key would have waited for the client's rate
// limiter: RetryAfter is when its turn comes.
type TurnError struct {
	Method, Route string
	RetryAfter    time.Duration
}

func (e *TurnError) Error() string {
	return fmt.Sprintf("cipherscale API %s %s: waiting %s for a turn of the client's rate limit",
		e.Method, e.Route, e.RetryAfter.Round(time.Millisecond))
}

// IsTurn reports a *TurnError: the call was not sent, and may be made again after RetryAfterOf.
func IsTurn(err error) bool {
	var te *TurnError
	return errors.As(err, &te)
}

type turnKey struct{}

// turnState is the turn key of one ctx, and whether a call of that ctx has had its turn.
type turnState struct {
	key   string
	taken atomic.Bool
}

// WithTurn returns a ctx whose first call does not wait for the rate limiter longer than a
// moment: it reserves its turn under key (the caller's own, stable across its attempts: an
// object's UID) and fails with a *TurnError; a call made under key once that turn has come takes
// it. The calls after one that had its turn wait in place. An empty key restores waiting in
// place (a read shared by several callers).
func WithTurn(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, turnKey{}, &turnState{key: key})
}

// turnOf returns the ctx's turn state, nil when its calls wait in place.
func turnOf(ctx context.Context) *turnState {
	ts, _ := ctx.Value(turnKey{}).(*turnState)
	if ts == nil || ts.key == "" || ts.taken.Load() {
		return nil
	}
	return ts
}

type turn struct {
	at  time.Time
	res *rate.Reservation
}

// takeToken takes a token of the limiter: waiting for it, or, with a turn key, taking the turn
// reserved earlier under the key, or reserving one.
func (c *Client) takeToken(ctx context.Context, cl call) error {
	ts := turnOf(ctx)
	if ts == nil {
		return c.limiter.Wait(ctx)
	}
	key := ts.key
	now := time.Now()
	c.turnMu.Lock()
	for k, t := range c.turns {
		if now.Sub(t.at) > turnExpiry {
			delete(c.turns, k)
		}
	}
	var wait time.Duration
	if t, ok := c.turns[key]; ok {
		wait = t.at.Sub(now)
		if wait > maxTurnWait {
			c.turnMu.Unlock()
			return &TurnError{Method: cl.method, Route: cl.route, RetryAfter: wait}
		}
		delete(c.turns, key)
	} else {
		r := c.limiter.ReserveN(now, 1)
		if !r.OK() {
			c.turnMu.Unlock()
			return fmt.Errorf("%w (the rate limiter grants no token)", context.DeadlineExceeded)
		}
		wait = r.DelayFrom(now)
		if wait > maxTurnWait {
			if wait > maxTurnHold {
				r.CancelAt(now)
			} else {
				if c.turns == nil {
					c.turns = map[string]*turn{}
				}
				c.turns[key] = &turn{at: now.Add(wait), res: r}
			}
			c.turnMu.Unlock()
			return &TurnError{Method: cl.method, Route: cl.route, RetryAfter: wait}
		}
	}
	c.turnMu.Unlock()
	ts.taken.Store(true)
	return sleepCtx(ctx, wait)
}
