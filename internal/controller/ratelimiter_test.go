package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestRateLimiterIsPerObject: the retries of failing objects never delay another object's first
// retry (controller-runtime's default limiter shares a bucket of 10 a second among all objects),
// and a failing object's own backoff is capped at the resync interval.
func TestRateLimiterIsPerObject(t *testing.T) {
	rl := rateLimiter(20 * time.Second)
	for i := range 500 {
		req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "down", Name: string(rune('a'+i%26)) + time.Duration(i).String()}}
		for range 5 {
			rl.When(req)
		}
	}
	healthy := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "up", Name: "u"}}
	if d := rl.When(healthy); d > 10*time.Millisecond {
		t.Errorf("first retry of a healthy object after 2,500 failures of others: %v, want its own backoff (5ms)", d)
	}
	failing := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "down", Name: "long"}}
	var d time.Duration
	for range 30 {
		d = rl.When(failing)
	}
	if d != 20*time.Second {
		t.Errorf("backoff after 30 failures: %v, want the resync interval, 20s", d)
	}
}
