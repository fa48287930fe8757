package controller

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/eventrec"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// Options configure both controllers.
type Options struct {
	// Tenant is the shared view of the Cipherscale tenant.
	Tenant *tenant.Tenant
	// ResyncInterval is how often an object is compared with the tenant when nothing changed.
	ResyncInterval time.Duration
	// DefaultDeletionPolicy applies to CipherscaleUsers that set none.
	DefaultDeletionPolicy iamv1alpha1.DeletionPolicy
	// MaxConcurrentReconciles bounds the reconciles of each kind running at once.
	MaxConcurrentReconciles int
	// Clock is the controllers' clock; the real one when nil.
	Clock clock.PassiveClock
	// Tenants is the set of tenants; Tenant becomes its default tenant. When nil, Setup makes
	// one that reads Secrets with the manager's API reader and the client's default rate limit.
	Tenants *tenant.Registry
	// URLPolicy is the rule over tenant objects' URLs of the registry Setup makes when Tenants
	// is nil; the zero value allows https to the vendor's host only.
	URLPolicy cipherscale.URLPolicy
	// NamespacedTenantsOnly serves no ClusterCipherscaleTenant: set when the operator watches
	// only some namespaces, as its RBAC then grants nothing cluster-scoped.
	NamespacedTenantsOnly bool
	// TenantName labels the tenant's metrics; DefaultTenantName when empty.
	TenantName string
	// AllowRemovalsConfigMap, when set, is the ConfigMap whose annotation
	// cipherscale.com/allow-removals releases the tenant's removal budget; AllowRemovalsPoll is
	// how often it is read (DefaultAllowRemovalsPoll when zero).
	AllowRemovalsConfigMap types.NamespacedName
	AllowRemovalsPoll      time.Duration
	// Trust is what the default tenant allows each namespace: adoption, privileged roles,
	// Authoritative memberships. The zero value allows none of them. A tenant object's objects
	// get the policy of its spec instead (TenantResolver.Trust).
	Trust plan.TrustPolicy
	// MaxInvitationsPerDay caps the invitations sent to one user in 24 hours; 0: no cap.
	MaxInvitationsPerDay int
}

// maxBackoff is the longest a failing object waits before it is tried again.
const maxBackoff = 5 * time.Minute

// rateLimiter is controller-runtime's default per-object backoff, capped: its default grows to
// 1000s, so after a long API failure objects would come back long after the API did. Here
// nothing waits longer than the resync interval (at most maxBackoff).
func rateLimiter(resync time.Duration) workqueue.TypedRateLimiter[reconcile.Request] {
	limit := min(max(resync, time.Second), maxBackoff)
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, limit),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// Setup registers the field indexes and both controllers with the manager, sharing one tenant
// and one event recorder. main.go and the tests wire the operator through it alone.
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
	if o.Tenant != nil {
		o.Tenants.SetDefault(o.Tenant)
	}
	// The objects whose removals wait are requeued when a person allows more (the
	// allow-removals ConfigMap or a tenant object's annotation) or a tenant's budget is raised.
	removalWake := make(chan event.GenericEvent, 1024)
	if err := setupTenants(ctx, mgr, o.Tenants, recorder, removalWake, o); err != nil {
		return err
	}
	objectMetrics.set(mgr.GetClient(), o.Tenants, mgr.Elected(), o.NamespacedTenantsOnly)
	resolver := &TenantResolver{Kube: mgr.GetClient(), Tenants: o.Tenants, NoClusterTenants: o.NamespacedTenantsOnly}
	// The CipherscaleUser reconciler writes the pairs of the users it manages, and wakes the
	// memberships that declared them.
	wake := make(chan event.GenericEvent, 1024)
	if o.AllowRemovalsConfigMap.Name != "" {
		poll := o.AllowRemovalsPoll
		if poll <= 0 {
			poll = DefaultAllowRemovalsPoll
		}
		a := &allowRemovals{
			reader: mgr.GetAPIReader(), writer: mgr.GetClient(), key: o.AllowRemovalsConfigMap,
			budget: o.Tenant.RemovalBudget(), poll: poll, wake: removalWake,
		}
		// The ConfigMap also keeps the default tenant's last hour across restarts: no removal
		// until it was read (Start restores it).
		a.budget.ExpectRestore()
		a.budget.SetSave(a.save)
		if err := mgr.Add(a); err != nil {
			return fmt.Errorf("setting up the allow-removals ConfigMap: %w", err)
		}
	}
	if err := (&UserReconciler{
		Kube: mgr.GetClient(), Resolver: resolver, Recorder: recorder, Clock: o.Clock,
		MembershipEvents:        wake,
		RemovalWake:             removalWake,
		TenantName:              o.TenantName,
		Trust:                   o.Trust,
		MaxInvitationsPerDay:    o.MaxInvitationsPerDay,
		ResyncInterval:          o.ResyncInterval,
		DefaultDeletionPolicy:   o.DefaultDeletionPolicy,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CipherscaleUser controller: %w", err)
	}
	if err := (&MembershipReconciler{
		Kube: mgr.GetClient(), Resolver: resolver, Recorder: recorder, Clock: o.Clock,
		Wake:                    wake,
		Trust:                   o.Trust,
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
