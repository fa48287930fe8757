package controller

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// wakeWaitingRemovals sends the objects whose removals wait for budget b to wake, after a grant
// or a raised budget: they would otherwise wait for their retry time, up to an hour.
func wakeWaitingRemovals(ctx context.Context, b *tenant.RemovalBudget, wake chan<- event.GenericEvent) {
	if wake == nil {
		return
	}
	for _, k := range b.WaitingKeys() {
		key, ok := objectOfRemoval(k)
		if !ok {
			continue
		}
		obj := &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		select {
		case wake <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}
