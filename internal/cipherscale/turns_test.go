package cipherscale_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// TestTurns: a call with a turn key does not wait for the rate limiter: it reserves its turn
// and fails at once with a *TurnError saying when it comes; the same key's call at that time
// takes the reserved token without waiting, and the rate limit holds throughout.
func TestTurns(t *testing.T) {
	var requests atomic.Int64
	c, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"` + uid1 + `","email":"a@example.com","status":"Active"}`))
	}), func(c *cipherscale.Config) { c.QPS, c.Burst = 2, 1 }) // a token every 500ms
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The first call takes the bucket's token.
	if _, err := c.GetUser(cipherscale.WithTurn(ctx, "a"), uid1); err != nil {
		t.Fatal(err)
	}
	// The next two would wait 500ms and 1s: each reserves its turn, without waiting.
	start := time.Now()
	_, errB := c.GetUser(cipherscale.WithTurn(ctx, "b"), uid1)
	_, errC := c.GetUser(cipherscale.WithTurn(ctx, "c"), uid1)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("the calls waiting for their turn took %s, want at once", took)
	}
	waitB, waitC := cipherscale.RetryAfterOf(errB), cipherscale.RetryAfterOf(errC)
	if !cipherscale.IsTurn(errB) || waitB < 400*time.Millisecond || waitB > 500*time.Millisecond {
		t.Fatalf("b: err = %v, want a turn in about 500ms", errB)
	}
	if !cipherscale.IsTurn(errC) || waitC < 900*time.Millisecond || waitC > time.Second {
		t.Fatalf("c: err = %v, want a turn in about 1s (after b's)", errC)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	// Coming back early gets the rest of the same turn, not a new one.
	time.Sleep(200 * time.Millisecond)
	if _, err := c.GetUser(cipherscale.WithTurn(ctx, "b"), uid1); !cipherscale.IsTurn(err) ||
		cipherscale.RetryAfterOf(err) > 300*time.Millisecond {
		t.Errorf("b early: err = %v, want the rest of its turn (under 300ms)", err)
	}
	// At its time, each takes its turn without waiting for another token.
	time.Sleep(time.Until(start.Add(waitB)))
	at := time.Now()
	if _, err := c.GetUser(cipherscale.WithTurn(ctx, "b"), uid1); err != nil {
		t.Fatalf("b at its turn: %v", err)
	}
	time.Sleep(time.Until(start.Add(waitC)))
	if _, err := c.GetUser(cipherscale.WithTurn(ctx, "c"), uid1); err != nil {
		t.Fatalf("c at its turn: %v", err)
	}
	if took := time.Since(at); took > waitC-waitB+150*time.Millisecond {
		t.Errorf("b and c took %s at their turns, want about %s", took, waitC-waitB)
	}
	// A call without a key waits in place, behind the reserved turns: the limit holds.
	before := time.Now()
	if _, err := c.GetUser(ctx, uid1); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(before); waited < 350*time.Millisecond {
		t.Errorf("a call without a key waited %s after the reserved turns, want about 500ms", waited)
	}

	// Within one ctx (one reconcile), the calls after one that had its turn wait in place: a
	// pass that gave its turn up at its second call would redo its first at the next turn.
	pass := cipherscale.WithTurn(ctx, "e")
	_, err := c.GetUser(pass, uid1)
	for cipherscale.IsTurn(err) {
		time.Sleep(cipherscale.RetryAfterOf(err))
		_, err = c.GetUser(pass, uid1)
	}
	if err != nil {
		t.Fatal(err)
	}
	before = time.Now()
	if _, err := c.GetUser(pass, uid1); err != nil {
		t.Errorf("the second call of a pass that had its turn: %v, want it to wait in place", err)
	}
	if waited := time.Since(before); waited < 350*time.Millisecond {
		t.Errorf("the second call of the pass waited %s, want about 500ms (the rate limit holds)", waited)
	}
}
