package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// minRemovalRetry is the shortest wait of a removal that waits for the budget.
const minRemovalRetry = time.Second

// removalWaitError says that a removal waits for the tenant's removal budget.
type removalWaitError struct {
	waiting    int
	retryAfter time.Duration
	// notRestored: the budget's record is not restored yet after the operator's start.
	notRestored bool
}

func (e *removalWaitError) Error() string {
	if e.notRestored {
		return "The operator is restoring the tenant's removal budget (the removals of the last hour) after its start; retrying shortly"
	}
	return fmt.Sprintf("The tenant's removal budget is spent and has tripped: %d removals wait (this one included), and the tenant's removals stop, whatever time passes, until a person acts on the tenant object (the annotation %s, or a higher spec.removalBudget.perHour), or the deleted objects are restored",
		e.waiting, iamv1alpha1.AnnotationAllowRemovals)
}

// removalObjects remembers which object each removal key names (the key holds the object's
// uid, not its name), so that a grant can wake the objects whose removals it released.
var removalObjects sync.Map // key -> types.NamespacedName

// removalKey names the removal of an object's tenant user in the budget: by its uid, so that a
// later object of the same name is another removal.
func removalKey(obj *iamv1alpha1.CipherscaleUser) string {
	k := tenant.UserRemovalKey(obj.Namespace, string(obj.UID))
	removalObjects.Store(k, typesKey(obj))
	return k
}

// objectOfRemoval returns the object a removal key names, false for a key of another kind or
// of an object this process has not seen ask (it asks again by itself after a start).
func objectOfRemoval(key string) (types.NamespacedName, bool) {
	v, ok := removalObjects.Load(key)
	if !ok {
		return types.NamespacedName{}, false
	}
	return v.(types.NamespacedName), true
}

// forgetRemoval forgets the object of an ended removal.
func forgetRemoval(key string) { removalObjects.Delete(key) }

// tenantName is the tenant label of the pass's tenant's metrics.
func (s *userScope) tenantName() string { return s.key.String() }

// reserveRemoval asks the budget for the unit of the object's removal, after the confirming
// read by id and only when a call will be made, and saves the unit before the call (a restart
// must count it). It returns nil, nil when the call may be made; a removalWaitError that says
// how long to wait; or the error of a save that failed (the unit is given back, the call is not
// made, and the reconcile is retried).
func (s *userScope) reserveRemoval(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (*removalWaitError, error) {
	b := s.budget
	key := removalKey(obj)
	res := b.Reserve(key)
	removalsWaiting.WithLabelValues(s.tenantName()).Set(float64(res.Waiting))
	if !res.OK {
		if res.TrippedNow {
			// The trip is saved before anything else is removed: a restart must keep it. A
			// failure is retried by the next Commit (every removal's, and the tenant's pass).
			// The removals that wait after it are saved by the tenant's pass, woken by the
			// change: one write for many, not one each.
			if err := b.Commit(ctx); err != nil {
				s.log.Info("Could not save the removal budget's trip; retrying", "error", err.Error())
			}
		}
		return &removalWaitError{waiting: res.Waiting, retryAfter: max(res.RetryAfter, minRemovalRetry), notRestored: res.NotRestored}, nil
	}
	if err := b.Commit(ctx); err != nil {
		b.Release(key)
		return nil, fmt.Errorf("recording the removal in the tenant's removal budget: %w", err)
	}
	return nil, nil
}

// endRemoval ends the object's removal after its call: Done when it succeeded, found the user
// gone, or may have removed them; Release when the API refused it; a call that may have been
// applied keeps its unit, so that its retry spends nothing more.
func (s *userScope) endRemoval(obj *iamv1alpha1.CipherscaleUser, err error) {
	b := s.budget
	key := removalKey(obj)
	switch {
	case err == nil || errors.Is(err, tenant.ErrUserGone) || cipherscale.IsNotFound(err):
		b.Done(key)
		forgetRemoval(key)
	case removalNotSent(err):
		b.Release(key)
	}
	removalsWaiting.WithLabelValues(s.tenantName()).Set(float64(b.Waiting()))
}

// removalNotWanted ends the object's removal when it has none to make any more (the object
// was released, the user is already inactive, spec.active is true again): it stops waiting.
func (s *userScope) removalNotWanted(obj *iamv1alpha1.CipherscaleUser) {
	b := s.budget
	key := removalKey(obj)
	b.Done(key)
	forgetRemoval(key)
	removalsWaiting.WithLabelValues(s.tenantName()).Set(float64(b.Waiting()))
}

// waitForRemoval keeps a deleting object, its finalizer held, until the budget allows its
// removal: Reconciling with reason RemovalBudgetExceeded, a warning event once, and a retry when
// the window frees its next unit (or at once when a person allows more).
func (s *userScope) waitForRemoval(obj *iamv1alpha1.CipherscaleUser, w *removalWaitError) ctrl.Result {
	msg := "Deleting: " + w.Error()
	s.warnOnChange(iamv1alpha1.ReasonRemovalBudgetExceeded, msg)
	markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.ReasonRemovalBudgetExceeded, msg)
	return ctrl.Result{RequeueAfter: w.retryAfter}
}

// deactivate deactivates the object's tenant user within the budget, after reading it by id:
// a user already inactive, or the owner, is left alone (false). A removal that waits returns a
// removalWaitError, which classify turns into Reconciling/RemovalBudgetExceeded.
func (s *userScope) deactivate(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, id string) (bool, error) {
	live, _, err := s.tenant.Get(ctx, id, true)
	if err != nil {
		return false, err
	}
	if live.TenantOwner() || live.Status.Normalized() == cipherscale.StatusInactive {
		s.removalNotWanted(obj)
		return false, nil
	}
	if w, err := s.reserveRemoval(ctx, obj); w != nil || err != nil {
		if w != nil {
			return false, w
		}
		return false, err
	}
	s.log.Info("Deactivating tenant user")
	err = s.tenant.Deactivate(ctx, id)
	s.endRemoval(obj, err)
	if err != nil {
		return false, fmt.Errorf("deactivating user %s: %w", id, err)
	}
	return true, nil
}

// removalStatusStep ends, at the end of a pass over an object that is not being deleted, a
// removal it no longer needs (spec.active is not false, or the user is inactive already, for
// example deactivated by hand), so that it stops waiting.
func (s *userScope) removalStatusStep(obj *iamv1alpha1.CipherscaleUser) {
	if s.tenant == nil {
		return // a pass refused its tenant (InvalidTenant) made no removal
	}
	wanted := obj.Spec.Active != nil && !*obj.Spec.Active && obj.Status.State != iamv1alpha1.UserStateInactive
	if obj.DeletionTimestamp.IsZero() && !wanted {
		s.removalNotWanted(obj)
	}
}

func typesKey(obj *iamv1alpha1.CipherscaleUser) types.NamespacedName {
	return types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
}
