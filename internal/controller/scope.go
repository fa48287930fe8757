package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// A pass works on a scope, never on a copy of its reconciler. The reconcilers hold what lives
// across requests (the client, the recorder, the clock, the caches and wakers); each reconcile
// of a CipherscaleUser or a membership resolves its tenant once (TenantResolver.connect) and
// builds one statusScope over its object, and every step of the pass takes that value.

// tenantScope is what one pass knows of its object's tenant, resolved once at the top of the
// reconcile.
type tenantScope struct {
	// tenant is nil when the object may not use its tenant (refusal says why).
	tenant *tenant.Tenant
	key    tenant.Key
	// refusal is the message of a Stalled condition with reason InvalidTenant, "" when the
	// object may use its tenant.
	refusal string
	// trust is what the tenant's spec allows the object's namespace beyond managing the users
	// the operator creates for it: adoption, privileged roles and groups, Authoritative
	// memberships. A tenant object that cannot be read allows nothing.
	trust plan.TrustPolicy
	// budget is the tenant's removal budget, nil with tenant.
	budget *tenant.RemovalBudget
	// defaultDeletionPolicy is the tenant's spec.defaultDeletionPolicy: the deletion policy of
	// its CipherscaleUsers that set none (Delete when it sets none, or cannot be read).
	defaultDeletionPolicy iamv1alpha1.DeletionPolicy
	// resync is how often the object is compared with the tenant when nothing changed: the
	// tenant's spec.resyncInterval, else the reconciler's.
	resync time.Duration
}

// connect resolves the tenant obj names, once for a pass (Resolve): the tenant, its key, its
// trust policy, its removal budget and settings, read from one read of the tenant object. A
// refusal is in the scope (its refusal); an error is a failed read, or a tenant this process
// has not loaded yet: to be retried. resync is the interval of an object whose tenant sets none.
func (r *TenantResolver) connect(ctx context.Context, obj client.Object, resync time.Duration) (tenantScope, error) {
	t, key, tobj, refusal, err := r.resolve(ctx, obj)
	if err != nil {
		return tenantScope{}, err
	}
	s := tenantScope{
		tenant: t, key: key, refusal: refusal,
		trust:                 r.trustOf(ctx, tobj),
		defaultDeletionPolicy: iamv1alpha1.DeletionPolicyDelete,
		resync:                resync,
	}
	if tobj != nil {
		if p := tobj.Settings().DefaultDeletionPolicy; p != "" {
			s.defaultDeletionPolicy = p
		}
	}
	if t != nil {
		s.budget = t.RemovalBudget()
		s.resync = t.ResyncInterval() // the tenant's spec.resyncInterval
	}
	return s, nil
}

// statusScope is the scaffolding both reconcilers share over the object of one pass: the
// status it started with, written back once when the pass ends (close), and the ways a pass
// ends short of done: fail, stall, failDeleting, with a warning event when the reason changes.
type statusScope struct {
	obj client.Object
	// conds and observedGeneration point into the object's status.
	conds              *[]metav1.Condition
	observedGeneration *int64
	// before is a copy of the status as read; after points to the object's status.
	before, after any
	recorder      events.EventRecorder
	log           logr.Logger
	// resyncInterval is the tenant scope's resync: the requeue of a stalled object.
	resyncInterval time.Duration
	// turn is the pass of the tenant the reconcile holds (turns.go), nil before it holds one;
	// entered: the reconcile entered the tenant (enter).
	turn    *tenant.Pass
	entered bool
	// settled: the status describes the generation settledAt (the object is ready, paused or
	// stalled); close records it in status.observedGeneration.
	settled   bool
	settledAt int64
}

// newStatusScope starts the status scope of obj, whose status is status (a pointer) with the
// conditions conds and the observed generation gen; before is a deep copy of the status as read.
func newStatusScope(ctx context.Context, obj client.Object, before, status any, conds *[]metav1.Condition, gen *int64, recorder events.EventRecorder) *statusScope {
	return &statusScope{
		obj: obj, before: before, after: status, conds: conds, observedGeneration: gen,
		recorder: recorder, log: ctrl.LoggerFrom(ctx),
	}
}

// connected sets what the tenant scope resolved: the resync of a stalled object.
func (s *statusScope) connected(ts tenantScope) {
	s.resyncInterval = ts.resync
}

// enter takes a pass of tenant t for the object (turns.go: no worker waits on a tenant). It
// returns the ctx the pass's calls use, or false when the tenant's passes are all taken (wake is
// called when one frees). close gives the pass back.
func (s *statusScope) enter(ctx context.Context, t *tenant.Tenant, wake func()) (context.Context, bool) {
	ctx, pass, ok := enterTenant(ctx, t, s.obj.GetUID(), wake)
	if ok {
		s.turn, s.entered = pass, true
	}
	return ctx, ok
}

// close ends the pass: a pass of the tenant it entered is given back (a reconcile that ended on
// a call waiting for its turn is requeued for it: turnResult), then the status is written, once
// per pass and only when it changed, after recording in status.observedGeneration the
// generation a settled pass describes. Its error joins retErr.
func (s *statusScope) close(ctx context.Context, kube client.Client, res *ctrl.Result, retErr *error) {
	if s.entered {
		turnResult(res, retErr, s.turn)
		s.turn.Release()
	}
	if s.settled {
		*s.observedGeneration = s.settledAt
	}
	if err := patchStatus(ctx, kube, s.obj, s.before, s.after); err != nil {
		*retErr = errors.Join(*retErr, err)
	}
}

// settle says the status now describes the generation gen of the object.
func (s *statusScope) settle(gen int64) { s.settled, s.settledAt = true, gen }

// resyncResult requeues after the resync interval with up to 10% jitter either way, so that
// objects created together do not resync together.
func (s *statusScope) resyncResult() ctrl.Result {
	return ctrl.Result{RequeueAfter: jitter(s.resyncInterval)}
}

// fail records an error on the object and says how to retry (errors.go classifies it).
func (s *statusScope) fail(err error) (ctrl.Result, error) {
	v := classify(err)
	if v.turn {
		s.turn.Hold(v.requeueAfter)
		return waitTurn(s.conds, s.obj.GetGeneration(), v), nil
	}
	if v.stalled {
		res := s.stall(v.reason, v.message)
		res.RequeueAfter = s.resyncInterval
		return res, nil
	}
	s.warnOnChange(v.reason, v.message)
	markReconciling(s.conds, s.obj.GetGeneration(), v.reason, v.message)
	if v.requeueAfter > 0 {
		return ctrl.Result{RequeueAfter: v.requeueAfter}, nil
	}
	return ctrl.Result{}, err
}

// failDeleting records an error of a deletion. Never a silent release: the finalizer stays,
// and the message says what would release it.
func (s *statusScope) failDeleting(err error) (ctrl.Result, error) {
	v := classify(err)
	if v.turn {
		s.turn.Hold(v.requeueAfter)
		return waitTurn(s.conds, s.obj.GetGeneration(), v), nil
	}
	msg := "Deleting: " + v.message + " (the finalizer stays until the deletion policy is carried out, or deletionPolicy is set to Orphan)"
	if v.stalled && !cipherscale.IsUnauthorized(err) {
		// Nothing a person could fix in the spec: keep retrying with backoff.
		v.retry = true
	}
	s.warnOnChange(v.reason, msg)
	markReconciling(s.conds, s.obj.GetGeneration(), iamv1alpha1.ReasonDeleting, msg)
	if v.requeueAfter > 0 {
		return ctrl.Result{RequeueAfter: v.requeueAfter}, nil
	}
	if v.retry {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: s.resyncInterval}, nil
}

// stall marks the object Stalled, settled at its generation, and checks it again at the resync.
func (s *statusScope) stall(reason, msg string) ctrl.Result {
	s.warnOnChange(reason, msg)
	markStalled(s.conds, s.obj.GetGeneration(), reason, msg)
	s.settle(s.obj.GetGeneration())
	return s.resyncResult()
}

// stallDeleting marks an object whose deletion waits for a person Stalled, with a warning when
// the reason changes, and checks it again at the resync. The deletion is not settled.
func (s *statusScope) stallDeleting(reason, msg string) ctrl.Result {
	s.warnOnChange(reason, msg)
	markStalled(s.conds, s.obj.GetGeneration(), reason, msg)
	return s.resyncResult()
}

// warnOnChange emits a warning event when the Ready reason changes, so that a failure repeated
// by every retry is reported once.
func (s *statusScope) warnOnChange(reason, msg string) {
	if busyReason(reason) {
		return
	}
	if readyReason(*s.conds) != reason || isReady(*s.conds) {
		s.event(corev1.EventTypeWarning, reason, "Reconcile", "%s", msg)
	}
}

// event records an event on the object.
func (s *statusScope) event(typ, reason, action, note string, args ...any) {
	s.recorder.Eventf(s.obj, nil, typ, reason, action, note, args...)
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// checkSetup checks what the reconciler of users or memberships (name) needs.
func checkSetup(name string, kube client.Client, resolver *TenantResolver, recorder events.EventRecorder, clk clock.PassiveClock, resync time.Duration) error {
	if kube == nil || resolver == nil || recorder == nil || clk == nil {
		return fmt.Errorf("%s needs Kube, Resolver, Recorder and Clock", name)
	}
	if resync <= 0 {
		return fmt.Errorf("%s needs a positive ResyncInterval", name)
	}
	return nil
}

// wakeThrough makes w add to the controller's queue once the controller starts.
func wakeThrough(b *builder.TypedBuilder[reconcile.Request], w *waker) *builder.TypedBuilder[reconcile.Request] {
	return b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		w.set(q)
		return nil
	}))
}
