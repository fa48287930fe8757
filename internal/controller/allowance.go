package controller

import (
	"context"
	"encoding/json"
	"fmt"
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

// Start polls until ctx is done. It runs on the leader only (it writes the ConfigMap). Its first
// read restores the default tenant's removal budget: the removals of the last hour that the
// annotation cipherscale.com/removals-by-minute records, and the allow-removals value already
// granted. Until then, the budget (made with ExpectRestore) makes every removal wait.
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
			if !restored {
				// Nothing was granted from, or saved in, an object that does not exist.
				logger.Info("The allow-removals ConfigMap does not exist: the default tenant's removal budget is kept in memory only, and a restart starts a fresh hour")
				a.budget.Restore(tenant.BudgetRecord{})
				restored = true
			}
			a.budget.Allow("", 0, "")
		case err != nil && !restored:
			// The default tenant's removals wait until this read succeeds.
			logger.Info("Could not read the allow-removals ConfigMap: the default tenant's removals wait for it", "error", err.Error())
		case err != nil:
			logger.V(1).Info("Could not read the allow-removals ConfigMap", "error", err.Error())
		default:
			if !restored {
				a.budget.RestoreAllowToken(cm.Annotations[iamv1alpha1.AnnotationAllowRemovalsGranted])
				record, err := parseRemovalsByMinute(cm.Annotations[iamv1alpha1.AnnotationRemovalsByMinute])
				if err != nil {
					logger.Info("Ignoring the saved removals of the last hour", "reason", err.Error())
				}
				a.budget.Restore(tenant.BudgetRecord{Minutes: record})
				logger.Info("Restored the default tenant's removal budget", "spent", a.budget.Status().Spent)
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
		a.budget.Allow("", 0, "")
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
	if granted, _ := a.budget.Allow(value, n, ""); granted {
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
func (a *allowRemovals) wakeWaiting(ctx context.Context) { wakeWaitingRemovals(ctx, a.budget, a.wake) }

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

// save writes the default tenant's removals of the last hour in the annotation
// cipherscale.com/removals-by-minute of the ConfigMap, before each removal's call (the budget's
// SaveFunc). A ConfigMap that does not exist saves nothing: the budget is then in memory only,
// as Start logged. Any other failure fails the save, and the removal waits for it.
func (a *allowRemovals) save(ctx context.Context, rec tenant.BudgetRecord) error {
	record := rec.Minutes
	value := ""
	if len(record) > 0 {
		b, err := json.Marshal(recordToAPI(record))
		if err != nil {
			return err
		}
		value = string(b)
	}
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		iamv1alpha1.AnnotationRemovalsByMinute: nilIfEmpty(value),
	}}}
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: a.key.Namespace, Name: a.key.Name}}
	if err := a.writer.Patch(ctx, cm, client.RawPatch(types.MergePatchType, b)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing ConfigMap %s: %w", a.key, err)
	}
	return nil
}

// parseRemovalsByMinute reads the annotation cipherscale.com/removals-by-minute ("": none).
func parseRemovalsByMinute(value string) ([]tenant.SpentMinute, error) {
	if value == "" {
		return nil, nil
	}
	var minutes []iamv1alpha1.RemovalMinute
	if err := json.Unmarshal([]byte(value), &minutes); err != nil {
		return nil, fmt.Errorf("%s is not a list of {minute, count}: %w", iamv1alpha1.AnnotationRemovalsByMinute, err)
	}
	return recordFromAPI(minutes), nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
