package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscaleusers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscaleusers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscaleusers/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// UserReconciler brings tenant users to their CipherscaleUsers. It holds what lives across
// requests; each reconcile works on a userScope.
type UserReconciler struct {
	Kube     client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// ResyncInterval is how often an object is compared with the tenant when nothing changed,
	// when its tenant sets no spec.resyncInterval.
	ResyncInterval time.Duration
	// MaxConcurrentReconciles bounds the reconciles running at once.
	MaxConcurrentReconciles int
	// MembershipEvents, when set, receives the memberships that name a user whose groups this
	// reconciler changed (the membership controller watches it).
	MembershipEvents chan<- event.GenericEvent
	// RemovalWake, when set, requeues objects whose removals waited for the removal budget when a
	// person allows more.
	RemovalWake <-chan event.GenericEvent
	// Resolver finds the tenant each object names (connect, once per reconcile).
	Resolver *TenantResolver

	// creates and wake are shared by the passes: the creates this process queued, and the
	// controller's queue their answers wake objects through.
	creates *createLog
	wake    *waker
}

// userScope is one reconcile of a CipherscaleUser: the reconciler's settings and caches, the
// object's tenant resolved once, and the object's status, written once when the pass ends.
type userScope struct {
	*UserReconciler
	tenantScope
	*statusScope
}

// Reconcile reads top to bottom: fetch, the scope (the tenant resolved once, the status written
// once when the pass ends, only when it changed), then the pass: deletion (user_delete.go), or
// the guards, observe (user_observe.go, which writes nothing), then create the user or take the
// one found (user_create.go), and update (user_update.go).
func (r *UserReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	obj := &iamv1alpha1.CipherscaleUser{}
	if err := r.Kube.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			userStates.set(req.NamespacedName, "", "")
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.Status.DeepCopy()
	s := &userScope{UserReconciler: r, statusScope: newStatusScope(ctx, obj, before, &obj.Status,
		&obj.Status.Conditions, &obj.Status.ObservedGeneration, r.Recorder)}
	defer func() {
		s.metrics(req.NamespacedName, obj, before)
		s.close(ctx, r.Kube, &res, &retErr)
	}()

	// The tenant comes first: a finalizer needs it too.
	ts, err := r.Resolver.connect(ctx, obj, r.ResyncInterval)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.tenantScope = ts
	s.connected(ts)
	return s.reconcile(ctx, req, obj)
}

// reconcile is the pass, on its scope: the tenant's pass, then deletion, the guards (trust,
// finalizer, email owner, privileged roles and groups), observe, plan, act.
func (s *userScope) reconcile(ctx context.Context, req ctrl.Request, obj *iamv1alpha1.CipherscaleUser) (ctrl.Result, error) {
	// A tenant in a 429 pause gives the worker back: the object is requeued after the pause
	// (classify), so that one tenant's throttling never holds the workers other tenants need.
	ctx = cipherscale.WithoutPauseWait(ctx)
	if s.refusal != "" {
		if !obj.DeletionTimestamp.IsZero() {
			return s.deleteRefused(ctx, obj, s.refusal)
		}
		return s.stall(iamv1alpha1.ReasonInvalidTenant, s.refusal), nil
	}
	// No worker waits on a tenant: past its share of passes, or for its rate limit (turns.go).
	ctx, ok := s.enter(ctx, s.tenant, s.wake.wakeFor(req.NamespacedName))
	if !ok {
		return ctrl.Result{RequeueAfter: passBackstop}, nil
	}

	if !obj.DeletionTimestamp.IsZero() {
		return s.reconcileDelete(ctx, obj)
	}
	idn := s.identityOf(obj)
	if res, stop, err := s.guard(ctx, obj, idn); stop {
		return res, err
	}
	paused := isPaused(obj)
	if idn.own {
		// Verified: the operator's own record.
		obj.Status.ID = idn.id
	}
	// Observe, writing nothing (user_observe.go); then one of: wait for a create in flight, take
	// its answer, create, or take the user found (user_create.go); then update (user_update.go).
	o, res, stop, err := s.observe(ctx, obj, idn, paused)
	if stop {
		return res, err
	}
	var seen observed
	switch o.kind {
	case observedCreating:
		return s.waitForCreate(obj), nil
	case observedAnswer:
		seen, res, err = s.finishCreate(ctx, obj, o.answer)
	case observedAbsent:
		if paused {
			return s.pausedAbsent(obj), nil
		}
		seen, res, err = s.create(ctx, obj)
	default:
		seen, res, err = s.take(ctx, obj, idn, o, paused)
	}
	if seen.user == nil || err != nil {
		return res, err
	}
	return s.update(ctx, obj, idn, seen, paused)
}

// guard runs, in order, the checks that come before anything of the tenant user is read,
// recorded or written: the identity the object names, its finalizer, the email's owner, the
// privileged roles and groups it asks for. stop is true when the pass ends with res and err.
func (s *userScope) guard(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, idn identity) (res ctrl.Result, stop bool, err error) {
	// Trust comes before anything is read, recorded or written: an id the object names that is
	// not the operator's own record (status.id, or a proof that verifies) is an adoption, which
	// only a namespace that may adopt makes. Elsewhere it is refused here, and status.id never
	// takes the annotation's value.
	if idn.unchecked {
		res, err := s.fail(idn.keyErr)
		return res, true, err
	}
	if idn.id != "" && !idn.own && !s.trust.MayAdopt(obj.Namespace) {
		return s.stall(iamv1alpha1.ReasonAdoptionNotAllowed, unverifiedIDMessage(s.key, obj.Namespace)), true, nil
	}
	if err := ensureFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer); err != nil {
		return ctrl.Result{}, true, err
	}

	owner, err := s.world().emailOwnerFor(ctx, obj, idn.own)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if owner != nil && owner.UID != obj.UID {
		// The owner may be in a namespace the reader of this object cannot see: it is not named.
		// Checked again at each resync, and woken at once when the owner goes.
		return s.stall(iamv1alpha1.ReasonEmailConflict,
			"Another CipherscaleUser manages this email (it recorded the tenant user's id, or was created earlier); this object does nothing until that one is gone"), true, nil
	}

	// Privileged roles asked of a namespace that may not grant them: refused before any write,
	// the create included.
	if res, stop, err := s.refused(s.refusedRoles(ctx, obj, nil)); stop {
		return res, true, err
	}
	// Privileged groups likewise (the create sends spec.groups).
	if res, stop, err := s.refused(s.refusedGroups(ctx, obj, nil)); stop {
		return res, true, err
	}
	return ctrl.Result{}, false, nil
}

// refused ends a pass on the answer of refusedRoles or refusedGroups: Stalled NotAllowed with
// the refusal's message, or the failure of the reads it made. stop is false when neither.
func (s *userScope) refused(msg string, err error) (res ctrl.Result, stop bool, _ error) {
	switch {
	case err != nil:
		res, err := s.fail(err)
		return res, true, err
	case msg != "":
		return s.stall(iamv1alpha1.ReasonNotAllowed, msg), true, nil
	}
	return ctrl.Result{}, false, nil
}

// metrics updates, when the pass ends, the metrics that follow the object's status.
func (s *userScope) metrics(key types.NamespacedName, obj *iamv1alpha1.CipherscaleUser, before *iamv1alpha1.CipherscaleUserStatus) {
	if !obj.DeletionTimestamp.IsZero() {
		userStates.set(key, "", "")
		return
	}
	s.removalStatusStep(obj)
	userStates.set(key, s.key.String(), string(obj.Status.State))
	if isReady(obj.Status.Conditions) && before.LastSyncTime == nil {
		timeToReady.WithLabelValues("CipherscaleUser").Observe(s.Clock.Since(obj.CreationTimestamp.Time).Seconds())
	}
}
