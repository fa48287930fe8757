package cipherscale

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The first call made with a turn key (WithTurn) never holds its caller while the client's rate
// limiter makes it wait: it reserves a token (rate.Reservation), and when that token is further
// away than a moment it cancels the reservation (the token goes back) and fails with a
// *TurnError that says when the token would have come. The caller (a reconcile) gives its
// worker back and comes again then. No token is held for a caller that may come back late: a
// call is sent only when the limiter grants it, so the calls never go out faster than the limit.
// Once a ctx's call has had its token, the later calls of that ctx (the rest of one reconcile)
// wait in place: a pass that gave up at its second call would make its first one again at its
// next turn, and never get further. The caller bounds how many passes of a tenant run or wait
// for their turn at once (tenant.Enter), so that the turns they ask for stay close together.
const (
	// maxTurnWait is the longest a call with a turn key waits for the limiter in place: shorter
	// than a pass through the work queue is worth.
	maxTurnWait = 50 * time.Millisecond
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

// turnState is the turn key of one ctx, and whether a call of that ctx has had its token.
type turnState struct {
	key   string
	taken atomic.Bool
}

// WithTurn returns a ctx whose first call does not wait for the rate limiter longer than a
// moment: it fails with a *TurnError saying when its token would come. The calls after one that
// had its token wait in place. An empty key restores waiting in place (a read shared by several
// callers); the key names the caller (an object's UID).
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

// takeToken takes a token of the limiter: waiting for it, or, for the first call of a ctx with
// a turn key, only when it comes within maxTurnWait.
func (c *Client) takeToken(ctx context.Context, cl call) error {
	ts := turnOf(ctx)
	if ts == nil {
		return c.limiter.Wait(ctx)
	}
	now := time.Now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return fmt.Errorf("%w (the rate limiter grants no token)", context.DeadlineExceeded)
	}
	wait := r.DelayFrom(now)
	if wait > maxTurnWait {
		r.CancelAt(now)
		return &TurnError{Method: cl.method, Route: cl.route, RetryAfter: wait}
	}
	ts.taken.Store(true)
	if err := sleepCtx(ctx, wait); err != nil {
		r.Cancel()
		return err
	}
	return nil
}
