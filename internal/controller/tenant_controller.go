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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	refused keyReads
	// verified remembers, per tenant, the configuration and key version of its last successful
	// read by this reconciler: until they change, the tenant shares its objects' snapshot.
	verified keyReads
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

// stall marks the tenant Stalled, with an event when the reason is new.
func (r *TenantReconciler) stall(obj tenantObject, reason, msg string) {
	st := obj.GetTenantStatus()
	if readyReason(st.Conditions) != reason {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, iamv1alpha1.EventTenantUnavailable, "Check", "%s", msg)
	}
	markStalled(&st.Conditions, obj.GetGeneration(), reason, msg)
	st.ObservedGeneration = obj.GetGeneration()
}

// referrers lists the CipherscaleUsers and memberships that name the tenant: the cache's own
// objects, not copies (a pass per object created, over every object of the tenant, would
// otherwise copy them all each time), so they are read, never changed.
func (r *TenantReconciler) referrers(ctx context.Context, key tenant.Key) (*iamv1alpha1.CipherscaleUserList, *iamv1alpha1.CipherscaleGroupMembershipList, error) {
	users := &iamv1alpha1.CipherscaleUserList{}
	if err := r.Kube.List(ctx, users, client.MatchingFields{indexTenant: key.String()}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, nil, fmt.Errorf("listing the CipherscaleUsers of %s: %w", key, err)
	}
	memberships := &iamv1alpha1.CipherscaleGroupMembershipList{}
	if err := r.Kube.List(ctx, memberships, client.MatchingFields{indexTenant: key.String()}, client.UnsafeDisableDeepCopy); err != nil {
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
	b := ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(r.Kind)).
		For(r.newObject(), builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate(), allowRemovalsChanged()))).
		Watches(&iamv1alpha1.CipherscaleUser{}, enqueueTenantOf(r.Kind, tenantPassDelay)).
		Watches(&iamv1alpha1.CipherscaleGroupMembership{}, enqueueTenantOf(r.Kind, tenantPassDelay))
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
