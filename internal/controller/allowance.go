package controller

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// DefaultAllowRemovalsPoll is how often the allow-removals ConfigMap is read.
const DefaultAllowRemovalsPoll = 5 * time.Second

// allowRemovals reads the annotation cipherscale.com/allow-removals on one ConfigMap, the way a
// person releases the removal budget of the default tenant (which has no object of its own), and
// grants its value once: the value granted is written back to the ConfigMap
// (cipherscale.com/allow-removals-granted) before it is granted, so that neither a later read
// nor a restart grants it again. After a grant, the objects whose removals wait are requeued.
// It reads one object by name with an uncached GET, so no ConfigMap is cached.
type allowRemovals struct {
	reader client.Reader
	writer client.Client
	key    types.NamespacedName
	budget *tenant.RemovalBudget
	poll   time.Duration
	wake   chan<- event.GenericEvent
	// badValue is the last value refused, so that it is logged once.
	badValue string
}

// Start polls until ctx is done. It runs on the leader only (it writes the ConfigMap).
func (a *allowRemovals) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithValues("configmap", a.key.String())
	restored := false
	t := time.NewTicker(a.poll)
	defer t.Stop()
	for {
		var cm corev1.ConfigMap
		err := a.reader.Get(ctx, a.key, &cm)
		switch {
		case apierrors.IsNotFound(err):
			restored = true // nothing was granted from an object that does not exist
			a.budget.Allow("", 0)
		case err != nil:
			logger.V(1).Info("Could not read the allow-removals ConfigMap", "error", err.Error())
		default:
			if !restored {
				a.budget.RestoreAllowToken(cm.Annotations[iamv1alpha1.AnnotationAllowRemovalsGranted])
				restored = true
			}
			a.check(ctx, &cm)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// check grants the annotation's value if it is new, and forgets the grant when the annotation
// is gone, so that setting the same value again later is a new grant.
func (a *allowRemovals) check(ctx context.Context, cm *corev1.ConfigMap) {
	logger := log.FromContext(ctx).WithValues("configmap", a.key.String())
	value := cm.Annotations[iamv1alpha1.AnnotationAllowRemovals]
	granted := cm.Annotations[iamv1alpha1.AnnotationAllowRemovalsGranted]
	if value == "" {
		a.budget.Allow("", 0)
		if granted != "" {
			_ = a.setGranted(ctx, cm, "")
		}
		return
	}
	if value == a.budget.AllowToken() {
		return
	}
	n, err := tenant.ParseAllowRemovals(value)
	if err != nil {
		if value != a.badValue {
			a.badValue = value
			logger.Info("Ignoring the allow-removals annotation", "reason", err.Error())
		}
		return
	}
	// Recorded before it is granted: a crash in between loses the grant rather than doubling it.
	if err := a.setGranted(ctx, cm, value); err != nil {
		logger.Info("Could not record the allow-removals grant; retrying", "error", err.Error())
		return
	}
	if a.budget.Allow(value, n) {
		logger.Info("Allowed more removals", "allowed", n, "waiting", a.budget.Waiting())
		a.wakeWaiting(ctx)
	}
}

func (a *allowRemovals) setGranted(ctx context.Context, cm *corev1.ConfigMap, value string) error {
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		iamv1alpha1.AnnotationAllowRemovalsGranted: nilIfEmpty(value),
	}}}
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return a.writer.Patch(ctx, cm, client.RawPatch(types.MergePatchType, b))
}

// wakeWaiting requeues the objects whose removals wait, so that they do not wait for their
// retry time.
func (a *allowRemovals) wakeWaiting(ctx context.Context) {
	for _, k := range a.budget.WaitingKeys() {
		key, ok := objectOfRemoval(k)
		if !ok {
			continue
		}
		obj := &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		select {
		case a.wake <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
