package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// indexTenant indexes CipherscaleUsers and CipherscaleGroupMemberships by the String of their
// tenant's key (ClusterCipherscaleTenant/default when they name none).
const indexTenant = "cipherscale.spec.tenantRef"

// tenantKeyOf returns the key of the tenant an object in namespace names with ref:
// ClusterCipherscaleTenant/default when ref is nil; a CipherscaleTenant is looked up in the
// object's own namespace.
func tenantKeyOf(namespace string, ref *iamv1alpha1.TenantReference) tenant.Key {
	switch {
	case ref == nil:
		return tenant.ClusterKey(tenant.DefaultName)
	case ref.Kind == iamv1alpha1.KindCipherscaleTenant:
		return tenant.NamespacedKey(namespace, ref.Name)
	default:
		return tenant.ClusterKey(ref.Name)
	}
}

// tenantRefOf returns the tenantRef of a CipherscaleUser or CipherscaleGroupMembership.
func tenantRefOf(o client.Object) *iamv1alpha1.TenantReference {
	switch x := o.(type) {
	case *iamv1alpha1.CipherscaleUser:
		return x.Spec.TenantRef
	case *iamv1alpha1.CipherscaleGroupMembership:
		return x.Spec.TenantRef
	}
	return nil
}

// setupTenantIndexes registers indexTenant on both kinds that name a tenant.
func setupTenantIndexes(ctx context.Context, mgr ctrl.Manager) error {
	byTenant := func(o client.Object) []string {
		return []string{tenantKeyOf(o.GetNamespace(), tenantRefOf(o)).String()}
	}
	if err := indexCluster(ctx, mgr, &iamv1alpha1.CipherscaleUser{}, indexTenant, byTenant); err != nil {
		return err
	}
	return indexCluster(ctx, mgr, &iamv1alpha1.CipherscaleGroupMembership{}, indexTenant, byTenant)
}

// tenantPassDelay is how long after a CipherscaleUser or membership is created or deleted its
// tenant object's pass runs. The pass lists every object of the tenant and copies its snapshot:
// run once per object, a sync of 10,000 objects made 10,000 passes over up to 10,000 objects
// and users each (313 MB allocated by those copies in 8 minutes of a heap profile at N=10,000;
// the change's own effect was not measured apart). Delayed, the events of a burst share one
// pass a second, and a lone object's count is in the status a second later.
const tenantPassDelay = time.Second

// enqueueTenantOf enqueues, delay after an object that names one is created or deleted, the
// tenant object of kind it names, so that the tenant's reference count (and a deletion that
// waits for it) follows the objects. The queue keeps the earliest time of a key already
// waiting: events during the delay add nothing. Updates do not change the count, and are not
// passed.
func enqueueTenantOf(kind string, delay time.Duration) handler.EventHandler {
	add := func(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		k := tenantKeyOf(o.GetNamespace(), tenantRefOf(o))
		if k.Kind != kind {
			return
		}
		q.AddAfter(reconcile.Request{NamespacedName: client.ObjectKey{Namespace: k.Namespace, Name: k.Name}}, delay)
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(e.Object, q)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(e.Object, q)
		},
	}
}

// TenantResolver finds the tenant a CipherscaleUser or CipherscaleGroupMembership names and
// says whether the object may use it. The user and membership reconcilers call Resolve before
// anything else touches the tenant.
type TenantResolver struct {
	// Kube reads tenant objects and namespaces (the manager's cached client).
	Kube client.Reader
	// Tenants is the set of tenants the operator serves.
	Tenants *tenant.Registry
	// ReadOnlyClusterTenants: ClusterCipherscaleTenants have no status this operator writes;
	// whether one is ready is the registry's (Options.ReadOnlyClusterTenants).
	ReadOnlyClusterTenants bool
}

// Resolve returns the tenant obj names (its spec.tenantRef; ClusterCipherscaleTenant/default
// when it names none) and its key. When obj may not use it, Resolve returns a nil tenant and a refusal: the
// message of a Stalled condition with reason InvalidTenant, naming the rule. An error is a
// failed read, or a tenant this process has not loaded yet: to be retried.
//
// The rules: a CipherscaleTenant is usable only from its own namespace (a tenantRef names it
// by name, in the object's namespace); a ClusterCipherscaleTenant only from the namespaces its
// namespaceSelector selects; a tenant that does not exist, is being deleted, or is Stalled (a
// person must fix it: its Secret, its URL, a key the API refuses) cannot be used. A tenant that
// is only busy or unreachable (Ready False, not Stalled: 429s, 5xx, timeouts) is used: the
// objects' own calls fail and they are Reconciling/APIUnavailable, not refused.
func (r *TenantResolver) Resolve(ctx context.Context, obj client.Object) (t *tenant.Tenant, key tenant.Key, refusal string, err error) {
	t, key, _, refusal, err = r.resolve(ctx, obj)
	return t, key, refusal, err
}

// resolve is Resolve, with the tenant object it read (nil when there is none to read).
func (r *TenantResolver) resolve(ctx context.Context, obj client.Object) (t *tenant.Tenant, key tenant.Key, tobj tenantObject, refusal string, err error) {
	ref := tenantRefOf(obj)
	key = tenantKeyOf(obj.GetNamespace(), ref)
	switch key.Kind {
	case tenant.KindNamespaced:
		tobj = &iamv1alpha1.CipherscaleTenant{}
	default:
		tobj = &iamv1alpha1.ClusterCipherscaleTenant{}
	}
	// The cache's own object, not a copy: every pass of every object reads its tenant, whose
	// status holds the invitation record (up to 2,000 addresses); copying it each time was the
	// operator's largest cost at N=10,000 (13% of its CPU, and most of its garbage collection).
	// tobj is read, never changed.
	if err := r.Kube.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Name}, tobj, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			if key.Kind == tenant.KindNamespaced {
				return nil, key, nil, fmt.Sprintf("There is no CipherscaleTenant %q in namespace %s: a CipherscaleTenant is usable only from its own namespace", key.Name, key.Namespace), nil
			}
			if ref == nil {
				return nil, key, nil, noDefaultTenantMessage, nil
			}
			return nil, key, nil, fmt.Sprintf("There is no ClusterCipherscaleTenant %q", key.Name), nil
		}
		return nil, key, nil, "", fmt.Errorf("reading %s: %w", key, err)
	}
	if c, ok := tobj.(*iamv1alpha1.ClusterCipherscaleTenant); ok {
		allowed, msg, err := r.selects(ctx, c.Spec.NamespaceSelector, obj.GetNamespace())
		if err != nil {
			return nil, key, nil, "", err
		}
		if !allowed {
			return nil, key, tobj, fmt.Sprintf("ClusterCipherscaleTenant %q may not be used from namespace %s: %s", key.Name, obj.GetNamespace(), msg), nil
		}
	}
	if !tobj.GetDeletionTimestamp().IsZero() && obj.GetDeletionTimestamp().IsZero() {
		return nil, key, tobj, fmt.Sprintf("%s %q is being deleted: name another tenant in a new object", key.Kind, key.Name), nil
	}
	// An object being deleted may still use a Stalled tenant: its finalizer has to be carried
	// out, and the call will say whether the tenant answers.
	deleting := !obj.GetDeletionTimestamp().IsZero()
	conds := tobj.GetTenantStatus().Conditions
	broken := tenantBroken(conds)
	if key.Kind == tenant.KindCluster && r.ReadOnlyClusterTenants {
		// Its status is not this operator's: what its reconciler found is in the registry.
		_, loaded := r.Tenants.Get(key)
		broken = loaded && !r.Tenants.Ready(key)
	}
	if broken && !deleting {
		return nil, key, tobj, fmt.Sprintf("%s %q cannot be used until it is fixed (%s): see its status", key.Kind, key.Name, readyReason(conds)), nil
	}
	t, ok := r.Tenants.Get(key)
	switch {
	case ok:
		return t, key, tobj, "", nil
	case broken:
		// Being deleted, after a restart: the tenant was never loaded, as it cannot be.
		return nil, key, tobj, fmt.Sprintf("%s %q cannot be used (%s): this object's deletion policy cannot be carried out until the tenant is fixed (see its status); "+
			"removing the finalizer %s instead leaves the user in the tenant", key.Kind, key.Name, readyReason(conds), iamv1alpha1.Finalizer), nil
	}
	// Not loaded by this process yet (just created, or the operator restarted): its reconciler
	// loads it in a moment, whether its API answers or not.
	return nil, key, nil, "", fmt.Errorf("%w: %s", errTenantNotLoaded, key)
}

// tenantBroken reports whether a tenant's conditions say that a person must fix it before it can
// be used: not Ready, and Stalled. A Ready tenant whose removal budget tripped is Stalled too,
// and usable.
func tenantBroken(conds []metav1.Condition) bool {
	return !isReady(conds) && meta.IsStatusConditionTrue(conds, iamv1alpha1.ConditionStalled)
}

// errTenantNotLoaded is Resolve's error for a tenant object whose reconciler has not loaded it in
// this process yet: retried with backoff, without a condition (the object is not at fault).
var errTenantNotLoaded = errors.New("the tenant is not loaded yet")

// trustOf returns the trust policy of the tenant object tobj: what its spec allows
// (plan.TenantTrust), the namespaces' labels read from the cache when a rule is asked. No tenant
// object allows nothing. The policy is for one pass: it reads with ctx.
func (r *TenantResolver) trustOf(ctx context.Context, tobj tenantObject) plan.TrustPolicy {
	labelsOf := func(namespace string) map[string]string {
		ns := &corev1.Namespace{}
		if err := r.Kube.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
			return nil // not known: selected by no selector (plan.NamespaceLabels)
		}
		if ns.Labels == nil {
			return map[string]string{}
		}
		return ns.Labels
	}
	switch t := tobj.(type) {
	case *iamv1alpha1.CipherscaleTenant:
		return plan.TenantTrust(iamv1alpha1.KindCipherscaleTenant, t.Namespace, nil, t.Spec.Privileged, labelsOf)
	case *iamv1alpha1.ClusterCipherscaleTenant:
		return plan.TenantTrust(iamv1alpha1.KindClusterCipherscaleTenant, "", t.Spec.Adoption, t.Spec.Privileged, labelsOf)
	}
	return plan.TrustPolicy{}
}

// noDefaultTenantMessage says what an object without a tenantRef needs.
const noDefaultTenantMessage = "There is no ClusterCipherscaleTenant \"default\", the tenant of objects without spec.tenantRef: " +
	"create it (the chart renders it from its values url and apiKey.existingSecret; see docs/migrating-from-flags.md), or set spec.tenantRef"

// selects reports whether selector selects the namespace; msg says why not.
func (r *TenantResolver) selects(ctx context.Context, selector *metav1.LabelSelector, namespace string) (ok bool, msg string, err error) {
	if selector == nil {
		return false, "its namespaceSelector is empty", nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return false, "its namespaceSelector is invalid: " + err.Error(), nil
	}
	if sel.Empty() {
		return true, "", nil
	}
	ns := &corev1.Namespace{}
	if err := r.Kube.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return false, "", fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if !sel.Matches(labels.Set(ns.Labels)) {
		return false, "its namespaceSelector does not select this namespace", nil
	}
	return true, "", nil
}

// referrersOf maps a tenant object to the objects of one kind (newList makes a
// CipherscaleUserList or a CipherscaleGroupMembershipList) that name it. The user and membership
// reconcilers watch both tenant kinds through it, so that a tenant that becomes Ready, or whose
// namespaceSelector changes, brings back the objects that use it.
func referrersOf(kube client.Reader, newList func() client.ObjectList) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var key tenant.Key
		switch o.(type) {
		case *iamv1alpha1.CipherscaleTenant:
			key = tenant.NamespacedKey(o.GetNamespace(), o.GetName())
		case *iamv1alpha1.ClusterCipherscaleTenant:
			key = tenant.ClusterKey(o.GetName())
		default:
			return nil
		}
		list := newList()
		if err := kube.List(ctx, list, client.MatchingFields{indexTenant: key.String()}, client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(list, func(obj runtime.Object) error {
			if co, ok := obj.(client.Object); ok {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(co)})
			}
			return nil
		})
		return reqs
	}
}

// watchTenants makes a controller of users or memberships (newList makes the list of its kind)
// watch both tenant kinds through referrersOf: a tenant that becomes Ready, stops being Ready,
// changes its spec, starts its deletion or goes brings back the objects that name it.
func watchTenants(b *builder.TypedBuilder[reconcile.Request], mgr ctrl.Manager, _ *TenantResolver, newList func() client.ObjectList) *builder.TypedBuilder[reconcile.Request] {
	h := handler.EnqueueRequestsFromMapFunc(referrersOf(mgr.GetClient(), newList))
	p := builder.WithPredicates(tenantChanged())
	return b.Watches(&iamv1alpha1.CipherscaleTenant{}, h, p).
		Watches(&iamv1alpha1.ClusterCipherscaleTenant{}, h, p)
}

// tenantChanged passes the tenant events that change what its objects may do: creation and
// deletion, a spec change, deletion starting, and Ready changing (a status change).
func tenantChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return true },
		DeleteFunc: func(event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(tenantObject)
			n, ok2 := e.ObjectNew.(tenantObject)
			if !ok1 || !ok2 {
				return false
			}
			oc, nc := o.GetTenantStatus().Conditions, n.GetTenantStatus().Conditions
			return o.GetGeneration() != n.GetGeneration() ||
				o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero() ||
				isReady(oc) != isReady(nc) || tenantBroken(oc) != tenantBroken(nc)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
