package cipherscale_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// TestTurns: the first call of a ctx with a turn key does not wait for the rate limiter: it
// fails at once with a *TurnError saying when its token would come, and gives the token back;
// at that time a call gets it without waiting. The calls after one that had its token wait in
// place. The rate limit holds throughout.
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
	// The next two would wait 500ms: each is told so at once, and takes no token.
	start := time.Now()
	_, errB := c.GetUser(cipherscale.WithTurn(ctx, "b"), uid1)
	_, errC := c.GetUser(cipherscale.WithTurn(ctx, "c"), uid1)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("the calls waiting for their turn took %s, want at once", took)
	}
	for name, err := range map[string]error{"b": errB, "c": errC} {
		if w := cipherscale.RetryAfterOf(err); !cipherscale.IsTurn(err) || w < 400*time.Millisecond || w > 500*time.Millisecond {
			t.Fatalf("%s: err = %v, want a turn in about 500ms", name, err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	// At that time the token is there: b's call goes without waiting.
	time.Sleep(time.Until(start.Add(cipherscale.RetryAfterOf(errB))))
	at := time.Now()
	if _, err := c.GetUser(cipherscale.WithTurn(ctx, "b"), uid1); err != nil {
		t.Fatalf("b at its turn: %v", err)
	}
	if took := time.Since(at); took > 100*time.Millisecond {
		t.Errorf("b at its turn took %s, want at once", took)
	}
	// c, coming at the same time, is told to come after the next token.
	if _, err := c.GetUser(cipherscale.WithTurn(ctx, "c"), uid1); !cipherscale.IsTurn(err) {
		t.Errorf("c after b took the token: err = %v, want a turn", err)
	}
	// Within one ctx (one reconcile), the calls after one that had its token wait in place: a
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
	before := time.Now()
	if _, err := c.GetUser(pass, uid1); err != nil {
		t.Errorf("the second call of a pass that had its token: %v, want it to wait in place", err)
	}
	if waited := time.Since(before); waited < 350*time.Millisecond {
		t.Errorf("the second call of the pass waited %s, want about 500ms (the rate limit holds)", waited)
	}
	// Every request went out at the limit's pace: 4 requests need 1.5s at least.
	if n, took := requests.Load(), time.Since(start); n != 4 || took < 1400*time.Millisecond {
		t.Errorf("%d requests in %s, want 4 in at least 1.5s", n, took)
	}
}
