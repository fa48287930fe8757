package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// The operator reads Secrets one by one, by name, from the API server (the manager's API
// reader): it never lists, watches or caches Secrets, so get is the only verb it needs.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=clustercipherscaletenants;cipherscaletenants,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=clustercipherscaletenants/status;cipherscaletenants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=clustercipherscaletenants/finalizers;cipherscaletenants/finalizers,verbs=update

// tenantObject is what the reconciler needs of either tenant kind.
type tenantObject interface {
	client.Object
	SecretRef() (namespace, name, key string)
	Settings() *iamv1alpha1.TenantSettings
	GetTenantStatus() *iamv1alpha1.TenantStatus
}

// defaultSecretKey is the key of the Secret read when a tenant names none.
const defaultSecretKey = "api-key"

// maxRecheckInterval bounds how long a Stalled tenant waits before its Secret is read again.
const maxRecheckInterval = 30 * time.Second

// maxKeyBytes bounds an API key read from a Secret: a key is short.
const maxKeyBytes = 4096

// TenantReconciler keeps one kind of tenant object (ClusterCipherscaleTenant or
// CipherscaleTenant) in the registry, checks its key with a read of the tenant's users, reports
// the tenant in its status, and holds the object while CipherscaleUsers or memberships use it.
type TenantReconciler struct {
	Kube client.Client
	// APIReader reads Secrets straight from the API server, so that no Secret is cached.
	APIReader client.Reader
	Tenants   *tenant.Registry
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Kind is the kind served: iamv1alpha1.KindClusterCipherscaleTenant or KindCipherscaleTenant.
	Kind string
	// ResyncInterval is how often a tenant whose spec sets none is read again.
	ResyncInterval time.Duration
	// RecheckInterval is how often the Secret of a Stalled tenant is read again, so that a
	// fixed or rotated Secret is picked up without a restart. The API is called again only when
	// the key changed, or after the resync interval.
	RecheckInterval time.Duration

	// Wake, when set, brings the reconciles of tenant objects whose number of waiting removals
	// changed (see tenantWaker), so that the status says it without waiting for the resync.
	Wake <-chan event.GenericEvent
	// RemovalWake, when set, requeues the CipherscaleUsers whose removals wait, after a person
	// allowed more or the budget was raised.
	RemovalWake chan<- event.GenericEvent
	// ReadOnly uses the tenant objects without writing them (no finalizer, no status, the
	// removal budget's hour kept in memory): an operator that watches only some namespaces may
	// only get, list and watch ClusterCipherscaleTenants. Whether the tenant is ready is kept in
	// the registry (Registry.SetReady) instead of the status.
	ReadOnly bool

	// WatchesSomeNamespaces is set when the operator watches only some namespaces: a
	// ClusterCipherscaleTenant's undeclared users are then never removed (partialView).
	WatchesSomeNamespaces bool

	// grace remembers when each tenant's undeclared users were first seen.
	grace graceClock

	mu sync.Mutex
	// refused remembers, per tenant, the version of the key the API last refused and when, so
	// that a Stalled tenant's recheck calls the API only with a new key.
	refused map[tenant.Key]refusedKey
	// verified remembers, per tenant, the configuration and key version of its last successful
	// read by this reconciler: until they change, the tenant shares its objects' snapshot.
	verified map[tenant.Key]refusedKey
}

type refusedKey struct {
	config  tenant.Config
	version uint64
	at      time.Time
}

func (r *TenantReconciler) newObject() tenantObject {
	if r.Kind == iamv1alpha1.KindCipherscaleTenant {
		return &iamv1alpha1.CipherscaleTenant{}
	}
	return &iamv1alpha1.ClusterCipherscaleTenant{}
}

func (r *TenantReconciler) keyOf(req ctrl.Request) tenant.Key {
	if r.Kind == iamv1alpha1.KindCipherscaleTenant {
		return tenant.NamespacedKey(req.Namespace, req.Name)
	}
	return tenant.ClusterKey(req.Name)
}

func (r *TenantReconciler) keyOfObject(obj tenantObject) tenant.Key {
	return r.keyOf(ctrl.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
}

// Reconcile reads top to bottom: fetch, references, deletion, finalizer, configuration, key,
// one read of the tenant's users, status (written once, deferred, only when it changed).
func (r *TenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	logger := log.FromContext(ctx)
	key := r.keyOf(req)
	obj := r.newObject()
	if err := r.Kube.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Tenants.Remove(key)
			r.forgetKey(key)
			r.grace.forget(key)
			forgetTenantMetrics(key)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	st := obj.GetTenantStatus()
	before := st.DeepCopy()
	defer func() {
		if r.ReadOnly {
			r.Tenants.SetReady(key, isReady(st.Conditions))
			return
		}
		if err := patchStatus(ctx, r.Kube, obj, before, st); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	// Before the tenant is in the registry, so before any of its objects can remove anyone.
	r.restoreBudget(obj, key)
	r.restoreInvitations(obj, key)

	users, memberships, err := r.referrers(ctx, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	st.References = int32(len(users.Items) + len(memberships.Items))

	if !obj.GetDeletionTimestamp().IsZero() {
		if st.References > 0 {
			// The objects' own finalizers still need the tenant: it stays in the registry, and
			// keeps its last good key should its Secret go first (a namespace deleted at once).
			// The watches on both kinds bring the tenant back when one goes.
			_, ensureErr := r.Tenants.Ensure(key, r.config(obj)) // after a restart
			if ensureErr != nil {
				logger.Info("The tenant cannot be reached for the objects that use it", "error", ensureErr.Error())
			}
			r.Tenants.Drain(key)
			logger.Info("Waiting for the objects that use the tenant", "references", st.References)
			// No silent wait: when the objects cannot be finalized (no key: the Secret went first
			// and this process never read it, or a URL it may not use), the status says so and
			// what a person can do.
			if ensureErr != nil || !r.Tenants.KeyAvailable(key) {
				r.stall(obj, iamv1alpha1.ReasonInvalidSecret, fmt.Sprintf(
					"%d objects that use the tenant wait to carry out their deletion policy, and the tenant cannot be used "+
						"(its Secret is gone or does not consent, and this process never read its key; or its URL is refused): "+
						"restore the Secret, annotated %s, to let them remove or deactivate their users; removing their finalizer %s instead leaves their users in the tenant",
					st.References, iamv1alpha1.AnnotationAllowedTenants, iamv1alpha1.Finalizer))
				return ctrl.Result{RequeueAfter: r.RecheckInterval}, nil
			}
			return ctrl.Result{}, nil
		}
		logger.Info("Releasing the tenant: nothing uses it")
		r.Tenants.Remove(key)
		r.forgetKey(key)
		r.grace.forget(key)
		forgetTenantMetrics(key)
		if r.ReadOnly {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, releaseFinalizer(ctx, r.Kube, obj, iamv1alpha1.TenantFinalizer)
	}
	if !r.ReadOnly {
		if err := ensureFinalizer(ctx, r.Kube, obj, iamv1alpha1.TenantFinalizer); err != nil {
			return ctrl.Result{}, err
		}
	}

	gen := obj.GetGeneration()
	conds := &st.Conditions
	cfg := r.config(obj)
	t, err := r.Tenants.Ensure(key, cfg)
	if err != nil {
		r.stall(obj, iamv1alpha1.ReasonInvalidURL, err.Error())
		return ctrl.Result{RequeueAfter: r.ResyncInterval}, nil
	}

	version, err := r.Tenants.ReloadKey(ctx, key)
	switch {
	case errors.Is(err, tenant.ErrInvalidSecret):
		r.stall(obj, iamv1alpha1.ReasonInvalidSecret, capitalize(err.Error()))
		return ctrl.Result{RequeueAfter: r.RecheckInterval}, nil
	case err != nil:
		markReconciling(conds, gen, iamv1alpha1.ReasonProgressing, "Reading the API key: "+err.Error())
		return ctrl.Result{}, err
	}
	if r.stillRefused(key, cfg, version) && readyReason(*conds) == iamv1alpha1.ReasonUnauthorized {
		return ctrl.Result{RequeueAfter: r.RecheckInterval}, nil
	}

	list, readAt, err := r.readUsers(ctx, obj, key, t, cfg, version)
	if err != nil {
		return r.failRead(ctx, obj, key, version, cfg, err)
	}
	r.forgetRefusal(key)

	counts := &iamv1alpha1.TenantUsers{Total: int32(len(list))}
	for _, u := range list {
		switch u.Status.Normalized() {
		case cipherscale.StatusPending:
			counts.Pending++
		case cipherscale.StatusActive:
			counts.Active++
		case cipherscale.StatusInactive:
			counts.Inactive++
		}
	}
	st.Users, st.LastSyncTime = counts, &readAt

	if !isReady(*conds) {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, iamv1alpha1.EventTenantReady, "Check",
			"The API key works: the tenant has %d users", len(list))
	}
	markReady(conds, gen, iamv1alpha1.ReasonUpToDate, fmt.Sprintf("The API key works: the tenant has %d users", len(list)))
	st.ObservedGeneration = gen

	// Never sooner than the resync interval: the tenant is read at most once an interval (jitter
	// only later), so that its idle reads stay within a read per interval.
	requeue := jitterLater(cfg.ResyncInterval)
	usable := r.admits(ctx, obj, key)
	after, err := r.undeclared(ctx, obj, key, t, list, declaredEmails(users, memberships, usable), usable)
	if after > 0 && after < requeue {
		requeue = after
	}
	return ctrl.Result{RequeueAfter: requeue}, err
}

// readUsers reads the tenant's users for this pass. A tenant that is Ready, whose spec and key
// were checked by this process's last read, shares the snapshot its objects read (read again
// when it is older than the resync interval, once for all): an idle tenant costs one read per
// interval, not one for the objects and one for the tenant. Any other pass must show that the
// key works, and reads the tenant itself.
func (r *TenantReconciler) readUsers(ctx context.Context, obj tenantObject, key tenant.Key, t *tenant.Tenant, cfg tenant.Config, version uint64) ([]cipherscale.User, metav1.Time, error) {
	logger := log.FromContext(ctx)
	st := obj.GetTenantStatus()
	now := r.Clock.Now()
	if isReady(st.Conditions) && st.ObservedGeneration == obj.GetGeneration() && r.verifiedWith(key, cfg, version) {
		list, at, ok, err := t.SharedUsers(ctx, now.Add(-cfg.ResyncInterval))
		if ok {
			logger.V(1).Info("Reading the tenant's users from the shared snapshot", "readAt", at)
			return list, metav1.NewTime(at), err
		}
	}
	logger.V(1).Info("Reading the tenant's users")
	list, err := t.API().ListUsers(ctx)
	if err == nil {
		r.verify(key, cfg, version)
	}
	return list, metav1.NewTime(now), err
}

// undeclared applies the tenant's removal budget (spec.removalBudget and the allow-removals
// annotation) and its undeclared-users policy, and reports both in the status. The tenant stays
// Ready (its objects may use it) and is also Stalled while removals wait for the budget or the
// policy cannot be applied. It returns how soon it wants to run again. It needs the cache of
// CipherscaleUsers and memberships filled, or everyone would look undeclared: controller-runtime
// starts this controller's workers only once the informers of its watches (both kinds) synced.
func (r *TenantReconciler) undeclared(ctx context.Context, obj tenantObject, key tenant.Key, t *tenant.Tenant, list []cipherscale.User, declared map[string]struct{}, usable func(namespace string) bool) (time.Duration, error) {
	logger := log.FromContext(ctx)
	st, gen := obj.GetTenantStatus(), obj.GetGeneration()
	budget := r.applyBudget(ctx, obj, key)

	before := st.Undeclared.DeepCopy()
	policy := undeclaredPolicyOf(obj.Settings().UndeclaredUsers)
	var out undeclaredOutcome
	err := r.partialView(key, policy)
	if err == nil {
		out, err = runUndeclared(ctx, undeclaredRun{
			Tenant: t, Budget: budget, Users: list, Declared: declared,
			Policy:    policy,
			FirstSeen: r.grace.get(key), Now: r.Clock.Now(),
			DeclaredNow: declaredNow(r.Kube, key, usable),
		})
	}
	if err != nil {
		msg := "spec.undeclaredUsers cannot be applied, nothing is acted on: " + err.Error()
		if c := meta.FindStatusCondition(st.Conditions, iamv1alpha1.ConditionStalled); c == nil || c.Reason != reasonInvalidUndeclaredUsers {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, reasonInvalidUndeclaredUsers, "Check", "%s", msg)
		}
		set(&st.Conditions, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, gen, reasonInvalidUndeclaredUsers, msg)
		r.reportBudgetHold(ctx, obj, budget)
		return 0, nil
	}
	r.grace.set(key, out.Plan.FirstSeen)
	p := out.Plan
	n := int32(p.Declared)
	st.Declared = &n
	setUndeclaredMetric(key, p)
	if p.Report == nil {
		st.Undeclared = nil
	} else {
		st.Undeclared = &iamv1alpha1.UndeclaredStatus{Count: int32(p.Report.Count), Emails: p.Report.Emails}
		if before == nil || before.Count != st.Undeclared.Count {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, eventUndeclaredUsers, "Report",
				"%d users of the tenant are undeclared: no CipherscaleUser or membership of the tenant names them", p.Report.Count)
		}
		logger.V(1).Info("Undeclared users", "plan", p.String())
	}
	if out.Removed > 0 {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, eventUndeclaredUserRemoved, "Remove",
			"%s %d undeclared users past the grace period of %s", removedVerb(p), out.Removed, undeclaredPolicyOf(obj.Settings().UndeclaredUsers).GracePeriod)
	}
	if out.Failed != nil {
		logger.Info("Some undeclared users could not be removed: tried again next pass", "error", out.Failed.Error())
	}

	r.reportBudgetHold(ctx, obj, budget)
	after := out.requeue()
	if out.Failed != nil && (after == 0 || after > r.RecheckInterval) {
		after = r.RecheckInterval
	}
	return after, nil
}

// partialView refuses a policy that removes undeclared users when this operator cannot see every
// object that may declare one: it watches only some namespaces, and the tenant is a
// ClusterCipherscaleTenant, whose objects may live in namespaces it does not watch (a user
// declared there would look undeclared, and be removed). A CipherscaleTenant's objects all live
// in its own namespace, which the operator watches since it sees the tenant. Report stays
// allowed: it removes nobody.
func (r *TenantReconciler) partialView(key tenant.Key, p undeclaredPolicy) error {
	if !r.WatchesSomeNamespaces || key.Kind != tenant.KindCluster {
		return nil
	}
	if p.Policy == plan.UndeclaredDeactivate || p.Policy == plan.UndeclaredDelete {
		return fmt.Errorf("policy %s removes users, and this operator watches only some namespaces (--watch-namespaces): "+
			"a user declared by an object in a namespace it does not watch would look undeclared; use Report, or an operator that watches every namespace", p.Policy)
	}
	return nil
}

// removedVerb says what the policy did to the users it removed.
func removedVerb(p plan.UndeclaredPlan) string {
	if len(p.Delete) > 0 {
		return "Deleted"
	}
	return "Deactivated"
}

// config is the tenant's configuration: its spec, with the operator's defaults for what it
// omits.
func (r *TenantReconciler) config(obj tenantObject) tenant.Config {
	s := obj.Settings()
	ns, name, key := obj.SecretRef()
	if key == "" {
		key = defaultSecretKey
	}
	cfg := tenant.Config{
		URL:                s.URL,
		ResyncInterval:     r.ResyncInterval,
		FullResyncInterval: tenant.DefaultFullResyncInterval,
		Secret:             tenant.SecretRef{Namespace: ns, Name: name, Key: key, For: r.keyOfObject(obj)},
	}
	if cfg.URL == "" {
		cfg.URL = cipherscale.DefaultBaseURL
	}
	if s.RequestsPerSecond != nil {
		cfg.QPS = float64(*s.RequestsPerSecond)
	}
	if s.Burst != nil {
		cfg.Burst = int(*s.Burst)
	}
	if s.ResyncInterval != nil && s.ResyncInterval.Duration > 0 {
		cfg.ResyncInterval = s.ResyncInterval.Duration
	}
	if s.FullResyncInterval != nil {
		cfg.FullResyncInterval = s.FullResyncInterval.Duration
	}
	return cfg
}

// failRead sets the status after a failed read of the tenant's users.
func (r *TenantReconciler) failRead(ctx context.Context, obj tenantObject, key tenant.Key, version uint64, cfg tenant.Config, err error) (ctrl.Result, error) {
	conds := &obj.GetTenantStatus().Conditions
	gen := obj.GetGeneration()
	switch {
	case cipherscale.IsUnauthorized(err):
		r.rememberRefusal(key, cfg, version)
		r.stall(obj, iamv1alpha1.ReasonUnauthorized,
			fmt.Sprintf("The Cipherscale API refused the API key in %s: put a valid key there", cfg.Secret))
		return ctrl.Result{RequeueAfter: r.RecheckInterval}, nil
	case cipherscale.IsNotFound(err):
		// A person must fix spec.url. What answered is not described (D3): the log has it.
		log.FromContext(ctx).V(1).Info("The tenant's list of users failed", "tenant", key.String(), "error", err.Error())
		r.stall(obj, iamv1alpha1.ReasonInvalidURL,
			fmt.Sprintf("The API at %s answered the list of users with an unexpected status: spec.url is not the base URL of a Cipherscale API", hostOf(cfg.URL)))
		return ctrl.Result{RequeueAfter: cfg.ResyncInterval}, nil
	}
	v := classify(err)
	if cipherscale.IsTransport(err) {
		v.message = fmt.Sprintf("The API at %s could not be reached; retrying", hostOf(cfg.URL))
	}
	switch {
	case v.stalled:
		r.stall(obj, v.reason, v.message)
		return ctrl.Result{RequeueAfter: cfg.ResyncInterval}, nil
	case v.requeueAfter > 0:
		markReconciling(conds, gen, v.reason, v.message)
		return ctrl.Result{RequeueAfter: v.requeueAfter}, nil
	default:
		markReconciling(conds, gen, v.reason, v.message)
		return ctrl.Result{}, err
	}
}

// stall marks the tenant Stalled, with an event when the reason is new.
func (r *TenantReconciler) stall(obj tenantObject, reason, msg string) {
	st := obj.GetTenantStatus()
	if readyReason(st.Conditions) != reason {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, iamv1alpha1.EventTenantUnavailable, "Check", "%s", msg)
	}
	markStalled(&st.Conditions, obj.GetGeneration(), reason, msg)
	st.ObservedGeneration = obj.GetGeneration()
}

func (r *TenantReconciler) rememberRefusal(key tenant.Key, cfg tenant.Config, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refused == nil {
		r.refused = map[tenant.Key]refusedKey{}
	}
	r.refused[key] = refusedKey{config: cfg, version: version, at: r.Clock.Now()}
}

// stillRefused reports whether the API refused this very key, with this very configuration,
// less than a resync interval ago.
func (r *TenantReconciler) stillRefused(key tenant.Key, cfg tenant.Config, version uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rk, ok := r.refused[key]
	return ok && rk.config == cfg && rk.version == version && r.Clock.Since(rk.at) < cfg.ResyncInterval
}

func (r *TenantReconciler) forgetRefusal(key tenant.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.refused, key)
}

// forgetKey forgets what was learnt of a tenant's key: the tenant left the registry.
func (r *TenantReconciler) forgetKey(key tenant.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.refused, key)
	delete(r.verified, key)
}

// verify records that the tenant was read with this configuration and key version.
func (r *TenantReconciler) verify(key tenant.Key, cfg tenant.Config, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.verified == nil {
		r.verified = map[tenant.Key]refusedKey{}
	}
	r.verified[key] = refusedKey{config: cfg, version: version, at: r.Clock.Now()}
}

// verifiedWith reports whether the tenant's last read by this reconciler used this
// configuration and key version.
func (r *TenantReconciler) verifiedWith(key tenant.Key, cfg tenant.Config, version uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.verified[key]
	return ok && v.config == cfg && v.version == version
}

// referrers lists the CipherscaleUsers and memberships that name the tenant.
func (r *TenantReconciler) referrers(ctx context.Context, key tenant.Key) (*iamv1alpha1.CipherscaleUserList, *iamv1alpha1.CipherscaleGroupMembershipList, error) {
	users := &iamv1alpha1.CipherscaleUserList{}
	if err := r.Kube.List(ctx, users, client.MatchingFields{indexTenant: key.String()}); err != nil {
		return nil, nil, fmt.Errorf("listing the CipherscaleUsers of %s: %w", key, err)
	}
	memberships := &iamv1alpha1.CipherscaleGroupMembershipList{}
	if err := r.Kube.List(ctx, memberships, client.MatchingFields{indexTenant: key.String()}); err != nil {
		return nil, nil, fmt.Errorf("listing the memberships of %s: %w", key, err)
	}
	return users, memberships, nil
}

// SetupWithManager registers the controller: it watches its kind of tenant (spec and deletion
// changes), and the CipherscaleUsers and memberships that name one (their number holds it).
// tenantWorkers is how many tenants are checked at once. A tenant check is one read of its
// users, rare (at the resync interval), and holds no lock: 16 workers cost 16 idle goroutines,
// while 2 let two tenants whose API hangs hold every check behind them for 30 s.
const tenantWorkers = 16

func (r *TenantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Kube == nil || r.APIReader == nil || r.Tenants == nil || r.Recorder == nil || r.Clock == nil {
		return errors.New("TenantReconciler needs Kube, APIReader, Tenants, Recorder and Clock")
	}
	if r.Kind != iamv1alpha1.KindClusterCipherscaleTenant && r.Kind != iamv1alpha1.KindCipherscaleTenant {
		return fmt.Errorf("TenantReconciler cannot serve kind %q", r.Kind)
	}
	if r.ResyncInterval <= 0 {
		return errors.New("TenantReconciler needs a positive ResyncInterval")
	}
	if r.RecheckInterval <= 0 || r.RecheckInterval > r.ResyncInterval {
		r.RecheckInterval = min(r.ResyncInterval, maxRecheckInterval)
	}
	countChanged := builder.WithPredicates(predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(r.Kind)).
		For(r.newObject(), builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate(), allowRemovalsChanged()))).
		Watches(&iamv1alpha1.CipherscaleUser{}, handler.EnqueueRequestsFromMapFunc(tenantOfObject(r.Kind)), countChanged).
		Watches(&iamv1alpha1.CipherscaleGroupMembership{}, handler.EnqueueRequestsFromMapFunc(tenantOfObject(r.Kind)), countChanged)
	if r.Wake != nil {
		b = b.WatchesRawSource(source.Channel(r.Wake, &handler.EnqueueRequestForObject{}))
	}
	// A read of a tenant whose API hangs holds its worker up to the client's timeout: enough
	// workers that a few such tenants do not delay another tenant's check (tenantWorkers).
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: tenantWorkers, RateLimiter: rateLimiter(r.ResyncInterval)}).
		Complete(r)
}

// allowRemovalsChanged passes the updates of a tenant object whose allow-removals annotation
// changed, so that a person's grant takes effect at once.
func allowRemovalsChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations()
			return o[iamv1alpha1.AnnotationAllowRemovals] != n[iamv1alpha1.AnnotationAllowRemovals] ||
				o[iamv1alpha1.AnnotationAllowRemovalsNamespace] != n[iamv1alpha1.AnnotationAllowRemovalsNamespace]
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// setupTenants registers the tenant index and one TenantReconciler per tenant kind; the
// ClusterCipherscaleTenant one is ReadOnly when o.ReadOnlyClusterTenants.
func setupTenants(ctx context.Context, mgr ctrl.Manager, tenants *tenant.Registry, recorder events.EventRecorder, removalWake chan<- event.GenericEvent, o Options) error {
	if err := setupTenantIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the tenant index: %w", err)
	}
	waker := newTenantWaker(tenantWakeDelay)
	tenants.OnWaitingChange(waker.wake)
	for _, kind := range []string{iamv1alpha1.KindClusterCipherscaleTenant, iamv1alpha1.KindCipherscaleTenant} {
		if err := (&TenantReconciler{
			Kube: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Tenants: tenants,
			Recorder: recorder, Clock: o.Clock, Kind: kind, ResyncInterval: o.ResyncInterval,
			Wake: waker.channel(kind), RemovalWake: removalWake,
			ReadOnly:              kind == iamv1alpha1.KindClusterCipherscaleTenant && o.ReadOnlyClusterTenants,
			WatchesSomeNamespaces: o.WatchesSomeNamespaces,
		}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", kind, err)
		}
	}
	return nil
}

// SecretReader reads API keys from Secrets with r, which should be the manager's API reader
// (a get of one Secret by name, never a cache of all). A Secret that is missing, that does not
// consent to the tenant reading it (annotation cipherscale.com/allowed-tenants), that the
// operator may not read, or whose key is empty, too long or holds control characters wraps
// tenant.ErrInvalidSecret. No error contains the key, and a Secret that does not consent is
// not described (which keys it has) beyond what a missing one would be.
func SecretReader(r client.Reader) tenant.ReadSecretFunc {
	return func(ctx context.Context, ref tenant.SecretRef) (string, error) {
		s := &corev1.Secret{}
		unusable := func() error {
			return fmt.Errorf("%w: Secret %s/%s does not exist, or does not allow %s to use it: "+
				"the Secret needs the annotation %s: %q (a comma-separated list), set by someone who may update it",
				tenant.ErrInvalidSecret, ref.Namespace, ref.Name, ref.For, iamv1alpha1.AnnotationAllowedTenants, consentName(ref.For))
		}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
			switch {
			case apierrors.IsNotFound(err):
				return "", unusable()
			case apierrors.IsForbidden(err):
				return "", fmt.Errorf("%w: the operator may not read Secret %s/%s", tenant.ErrInvalidSecret, ref.Namespace, ref.Name)
			}
			return "", fmt.Errorf("reading Secret %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if !consents(s, ref) {
			return "", unusable()
		}
		raw, ok := s.Data[ref.Key]
		if !ok {
			return "", fmt.Errorf("%w: Secret %s/%s has no key %q", tenant.ErrInvalidSecret, ref.Namespace, ref.Name, ref.Key)
		}
		v := strings.TrimSpace(string(raw))
		switch {
		case v == "":
			return "", fmt.Errorf("%w: key %q of Secret %s/%s is empty", tenant.ErrInvalidSecret, ref.Key, ref.Namespace, ref.Name)
		case len(v) > maxKeyBytes:
			return "", fmt.Errorf("%w: key %q of Secret %s/%s is longer than %d bytes", tenant.ErrInvalidSecret, ref.Key, ref.Namespace, ref.Name, maxKeyBytes)
		case strings.ContainsFunc(v, unicode.IsControl):
			return "", fmt.Errorf("%w: key %q of Secret %s/%s holds control characters (more than one line?)", tenant.ErrInvalidSecret, ref.Key, ref.Namespace, ref.Name)
		}
		return v, nil
	}
}

// consentName is how a Secret's annotation cipherscale.com/allowed-tenants names the tenant
// of key: "ClusterCipherscaleTenant/<name>" or "CipherscaleTenant/<name>".
func consentName(key tenant.Key) string { return key.Kind + "/" + key.Name }

// consents reports whether the Secret allows the tenant ref.For to use it: its annotation
// cipherscale.com/allowed-tenants names the tenant exactly (no wildcard), and a CipherscaleTenant
// only from the Secret's own namespace.
func consents(s *corev1.Secret, ref tenant.SecretRef) bool {
	if ref.For.Kind == "" || ref.For.Name == "" {
		return false
	}
	if ref.For.Kind == tenant.KindNamespaced && ref.For.Namespace != s.Namespace {
		return false
	}
	want := consentName(ref.For)
	for _, v := range strings.Split(s.Annotations[iamv1alpha1.AnnotationAllowedTenants], ",") {
		if strings.TrimSpace(v) == want {
			return true
		}
	}
	return false
}

// hostOf is the host of a tenant's URL, for a message.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "the tenant's URL"
}

// capitalize makes an error's text a sentence, for a condition's message.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// admits returns whether the tenant obj (of key) admits objects of a namespace now: a
// CipherscaleTenant those of its own namespace, a ClusterCipherscaleTenant those its
// namespaceSelector selects (a namespace whose labels cannot be read is admitted by no selector
// but {}).
func (r *TenantReconciler) admits(ctx context.Context, obj tenantObject, key tenant.Key) func(namespace string) bool {
	c, ok := obj.(*iamv1alpha1.ClusterCipherscaleTenant)
	if !ok {
		return func(namespace string) bool { return namespace == key.Namespace }
	}
	res := &TenantResolver{Kube: r.Kube}
	return func(namespace string) bool {
		ok, _, err := res.selects(ctx, c.Spec.NamespaceSelector, namespace)
		return err == nil && ok
	}
}

// jitterLater spreads d over [d, 1.1d]: never sooner than d.
func jitterLater(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration(rand.Int64N(int64(d/10)+1))
}
