package controller

import (
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// tenantWakeDelay is how long the waker gathers the waiting changes of one tenant before it
// wakes the tenant's reconciler: a storm of removals that start waiting costs about one
// reconcile (one read of the tenant's users) per delay, not one per removal.
const tenantWakeDelay = time.Second

// tenantWaker wakes the reconciler of a tenant object when the number of its waiting removals
// changed (an object's removal started or stopped waiting, in a user's or membership's
// reconcile or in the pruning of undeclared users), so that its Stalled condition and waiting
// count follow within about a delay instead of at its next resync. The changes of one tenant
// within a delay make one wake-up.
type tenantWaker struct {
	delay time.Duration
	chans map[string]chan event.GenericEvent

	mu      sync.Mutex
	pending map[tenant.Key]bool
}

func newTenantWaker(delay time.Duration) *tenantWaker {
	return &tenantWaker{
		delay: delay,
		chans: map[string]chan event.GenericEvent{
			iamv1alpha1.KindClusterCipherscaleTenant: make(chan event.GenericEvent, 256),
			iamv1alpha1.KindCipherscaleTenant:        make(chan event.GenericEvent, 256),
		},
		pending: map[tenant.Key]bool{},
	}
}

// channel returns the wake-ups of one kind of tenant object.
func (w *tenantWaker) channel(kind string) <-chan event.GenericEvent { return w.chans[kind] }

// wake schedules a wake-up of the tenant of k in a delay, unless one is scheduled already.
func (w *tenantWaker) wake(k tenant.Key) {
	ch, ok := w.chans[k.Kind]
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[k] {
		return
	}
	w.pending[k] = true
	time.AfterFunc(w.delay, func() {
		w.mu.Lock()
		delete(w.pending, k)
		w.mu.Unlock()
		var obj tenantObject = &iamv1alpha1.ClusterCipherscaleTenant{}
		if k.Kind == iamv1alpha1.KindCipherscaleTenant {
			obj = &iamv1alpha1.CipherscaleTenant{}
		}
		obj.SetNamespace(k.Namespace)
		obj.SetName(k.Name)
		select {
		case ch <- event.GenericEvent{Object: obj}:
		default: // the channel is full: its reconciles are far behind, and the resync comes
		}
	})
}
