package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestTenantWakerCoalesces: a storm of waiting changes on one tenant makes one wake-up per
// delay; each tenant object gets its own.
func TestTenantWakerCoalesces(t *testing.T) {
	w := newTenantWaker(50 * time.Millisecond)
	a := tenant.NamespacedKey("team", "people")
	b := tenant.ClusterKey("prod")
	for range 250 {
		w.wake(a)
		w.wake(b)
	}
	recv := func(kind string) []string {
		var names []string
		deadline := time.After(500 * time.Millisecond)
		for {
			select {
			case e := <-w.channel(kind):
				names = append(names, e.Object.GetNamespace()+"/"+e.Object.GetName())
			case <-deadline:
				return names
			}
		}
	}
	if got := recv(iamv1alpha1.KindCipherscaleTenant); !cmp.Equal(got, []string{"team/people"}) {
		t.Fatalf("CipherscaleTenant wake-ups %v, want one", got)
	}
	if got := recv(iamv1alpha1.KindClusterCipherscaleTenant); !cmp.Equal(got, []string{"/prod"}) {
		t.Fatalf("ClusterCipherscaleTenant wake-ups %v, want one", got)
	}
	// After a wake-up, the next change makes a new one.
	w.wake(a)
	if got := recv(iamv1alpha1.KindCipherscaleTenant); len(got) != 1 {
		t.Fatalf("wake-ups after the first %v, want one", got)
	}
}
