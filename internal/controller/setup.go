package controller

import (
	"context"
	"fmt"
	"os"
	"time"

	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/eventrec"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// Options configure the controllers. Every tenant concern (URL, key, rate, trust, budget,
// undeclared users, deletion policy) is in the tenant objects, not here.
type Options struct {
	// ResyncInterval is how often an object is compared with its tenant when nothing changed,
	// and how often a tenant whose spec sets no resyncInterval is read again.
	ResyncInterval time.Duration
	// MaxConcurrentReconciles bounds the reconciles of each kind running at once.
	MaxConcurrentReconciles int
	// Clock is the controllers' clock; the real one when nil.
	Clock clock.PassiveClock
	// Tenants is the set of tenants. When nil, Setup makes one that reads Secrets with the
	// manager's API reader and the client's default rate limit.
	Tenants *tenant.Registry
	// ReadOnlyClusterTenants uses ClusterCipherscaleTenants (the default one among them)
	// without writing them: set when the operator watches only some namespaces, as its RBAC
	// then only lets it get, list and watch them (see TenantReconciler.ReadOnly).
	ReadOnlyClusterTenants bool
	// URLPolicy is the rule over tenant objects' URLs of the registry Setup makes when Tenants
	// is nil; the zero value allows https to the vendor's host only.
	URLPolicy cipherscale.URLPolicy
	// WatchesSomeNamespaces: the operator watches only some namespaces, so users declared
	// elsewhere look undeclared (TenantReconciler.WatchesSomeNamespaces).
	WatchesSomeNamespaces bool
}

// maxBackoff is the longest a failing object waits before it is tried again.
const maxBackoff = 5 * time.Minute

// rateLimiter is the per-object backoff of a failing reconcile: controller-runtime's default
// exponential one, capped (its default grows to 1000s, so after a long API failure objects would
// come back long after the API did; here nothing waits longer than the resync interval, at most
// maxBackoff). Without controller-runtime's other half, a bucket of 10 retries a second shared
// by every object: with it, the retries of one tenant's failing objects (an API that is down, a
// Secret that is gone) queued every other tenant's retries behind theirs, for minutes once a few
// hundred objects failed. Each object's own backoff already bounds how often it comes back.
func rateLimiter(resync time.Duration) workqueue.TypedRateLimiter[reconcile.Request] {
	limit := min(max(resync, time.Second), maxBackoff)
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, limit)
}

// Setup registers the field indexes and the controllers with the manager, sharing one registry
// of tenants and one event recorder. main.go and the tests wire the operator through it alone.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if err := setupIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("setting up field indexes: %w", err)
	}
	recorder, err := newRecorder(mgr)
	if err != nil {
		return err
	}
	if o.Tenants == nil {
		o.Tenants = tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: SecretReader(mgr.GetAPIReader()), ObserverFor: TenantMetrics, URLPolicy: o.URLPolicy})
	}
	// The objects whose removals wait are requeued when a person allows more (a tenant
	// object's allow-removals annotation) or a tenant's budget is raised.
	removalWake := make(chan event.GenericEvent, 1024)
	if err := setupTenants(ctx, mgr, o.Tenants, recorder, removalWake, o); err != nil {
		return err
	}
	// Cluster tenants are read in every mode (the chart's ClusterRole may only read them when
	// the operator watches some namespaces), so their metrics list them too.
	objectMetrics.set(mgr.GetClient(), o.Tenants, mgr.Elected(), false)
	resolver := &TenantResolver{Kube: mgr.GetClient(), Tenants: o.Tenants, ReadOnlyClusterTenants: o.ReadOnlyClusterTenants}
	// The CipherscaleUser reconciler writes the pairs of the users it manages, and wakes the
	// memberships that declared them.
	wake := make(chan event.GenericEvent, 1024)
	if err := (&UserReconciler{
		Kube: mgr.GetClient(), Resolver: resolver, Recorder: recorder, Clock: o.Clock,
		MembershipEvents:        wake,
		RemovalWake:             removalWake,
		ResyncInterval:          o.ResyncInterval,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CipherscaleUser controller: %w", err)
	}
	if err := (&MembershipReconciler{
		Kube: mgr.GetClient(), Resolver: resolver, Recorder: recorder, Clock: o.Clock,
		Wake:                    wake,
		ResyncInterval:          o.ResyncInterval,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CipherscaleGroupMembership controller: %w", err)
	}
	return nil
}

// newRecorder returns the controllers' event recorder, added to the manager. It writes the
// events the manager's GetEventRecorder would write (events.k8s.io/v1, same names, fields and
// series) but remembers a hash of each instead of a copy: see package eventrec.
func newRecorder(mgr ctrl.Manager) (*eventrec.Recorder, error) {
	client, err := eventsv1client.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("setting up the event recorder: %w", err)
	}
	hostname, _ := os.Hostname()
	rec := eventrec.New(mgr.GetScheme(), "cipherscale-operator", hostname, eventrec.APISink{Client: client},
		eventrec.Options{Log: mgr.GetLogger().WithName("events")})
	if err := mgr.Add(rec); err != nil {
		return nil, fmt.Errorf("setting up the event recorder: %w", err)
	}
	return rec, nil
}
