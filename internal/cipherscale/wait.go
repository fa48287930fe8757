// How a call waits: for its turn of the rate limiter, through a 429 pause the API asked for
// (shared by every call of the client), and between retries.

package cipherscale

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// waitTurn waits until no 429 pause is in force and a token of the limiter is available.
// A pause longer than what is left of the call's budget is not waited for: the call fails at
// once with a 429 *APIError whose RetryAfter says when to come back.
func (c *Client) waitTurn(ctx context.Context, cl call, deadline time.Time) error {
	start := time.Now()
	defer func() {
		if c.obs != nil {
			c.obs.ObserveRateLimitWait(time.Since(start))
		}
	}()
	if err := c.waitPause(ctx, cl, deadline); err != nil {
		return err
	}
	if err := c.takeToken(ctx, cl); err != nil {
		if IsTurn(err) {
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		} else {
			// The wait would outlast the ctx's deadline: report it as the deadline it is.
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		return fmt.Errorf("cipherscale API %s: waiting for the rate limiter: %w", cl.route, err)
	}
	// A 429 may have arrived while this call waited for its token.
	return c.waitPause(ctx, cl, deadline)
}

func (c *Client) waitPause(ctx context.Context, cl call, deadline time.Time) error {
	for {
		c.mu.Lock()
		until := c.pausedUntil
		c.mu.Unlock()
		now := time.Now()
		if !now.Before(until) {
			return nil
		}
		if until.After(deadline) || noPauseWait(ctx) {
			return &APIError{
				Status:     http.StatusTooManyRequests,
				Method:     cl.method,
				Route:      cl.route,
				Message:    "rate limited: calls are paused after an earlier 429",
				RetryAfter: until.Sub(now),
				// The storm so far, so that the caller's wait can grow with it.
				ThrottledFor: c.throttledFor(now),
			}
		}
		if err := sleepCtx(ctx, until.Sub(now)); err != nil {
			return fmt.Errorf("cipherscale API %s: waiting out a 429: %w", cl.route, err)
		}
	}
}

type noPauseWaitKey struct{}

// WithoutPauseWait returns a ctx whose calls neither wait out a 429 pause nor retry a 429: they
// fail at once with a 429 *APIError whose RetryAfter says when to come back. A controller
// uses it so that a throttled tenant gives its workers back, to requeue the object after the
// pause, instead of holding them while other tenants' objects wait.
func WithoutPauseWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noPauseWaitKey{}, true)
}

func noPauseWait(ctx context.Context) bool {
	v, _ := ctx.Value(noPauseWaitKey{}).(bool)
	return v
}

// pause makes every call of the client wait until d from now, and returns how long the API has
// been answering 429 (the storm so far, counted from its first 429).
func (c *Client) pause(d time.Duration) time.Duration {
	now := time.Now()
	until := now.Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
	if c.throttledSince.IsZero() {
		c.throttledSince = now
	}
	return now.Sub(c.throttledSince)
}

// answered ends a 429 storm: the API gave an answer other than 429.
func (c *Client) answered() {
	c.mu.Lock()
	c.throttledSince = time.Time{}
	c.mu.Unlock()
}

// throttledFor is how long the API has been answering 429 at now, 0 when it is not.
func (c *Client) throttledFor(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.throttledSince.IsZero() {
		return 0
	}
	return now.Sub(c.throttledSince)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date. It returns 0 when
// the header is absent or unreadable, and at most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(secs) || secs <= 0 {
			return 0
		}
		if secs > maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// backoff is the jittered exponential wait before retry number attempt+1: equal jitter over
// backoffBase * 2^attempt, capped at backoffCap.
func backoff(attempt int) time.Duration {
	d := backoffCap
	if attempt < 16 {
		d = min(backoffBase<<attempt, backoffCap)
	}
	half := d / 2
	return half + rand.N(half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
