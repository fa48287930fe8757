// The membership controller's watches: its own kind, the CipherscaleUsers its members name, the
// other memberships of its group, the tenants, and the wakes of the user reconciler and of its
// tenant's passes.

package controller

import (
	"context"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// SetupWithManager registers the controller. Besides its own kind it watches the
// CipherscaleUsers its members name (a user created in the tenant, or changing its groups,
// changes what the membership must do) and the other memberships of the same group.
func (r *MembershipReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("MembershipReconciler", r.Kube, r.Resolver, r.Recorder, r.Clock, r.ResyncInterval); err != nil {
		return err
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 1
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("cipherscalegroupmembership").
		For(&iamv1alpha1.CipherscaleGroupMembership{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Watches(&iamv1alpha1.CipherscaleUser{}, handler.EnqueueRequestsFromMapFunc(r.membershipsNaming),
			builder.WithPredicates(userChangedForMemberships())).
		Watches(&iamv1alpha1.CipherscaleGroupMembership{}, handler.EnqueueRequestsFromMapFunc(r.sameGroup),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: rateLimiter(r.ResyncInterval)})
	b = watchTenants(b, mgr, r.Resolver, func() client.ObjectList { return &iamv1alpha1.CipherscaleGroupMembershipList{} })
	if r.Wake != nil {
		b = b.WatchesRawSource(source.Channel(r.Wake, &handler.EnqueueRequestForObject{}))
	}
	r.passWake = &waker{}
	return wakeThrough(b, r.passWake).Complete(r)
}

// userChangedForMemberships passes the CipherscaleUser events that can change a membership's
// work: creation and deletion, a tenant id appearing or changing, spec changes, deletion
// starting, a pause set or lifted, Stalled appearing or going.
func userChangedForMemberships() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return true },
		DeleteFunc: func(event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*iamv1alpha1.CipherscaleUser)
			n, ok2 := e.ObjectNew.(*iamv1alpha1.CipherscaleUser)
			if !ok1 || !ok2 {
				return false
			}
			return o.Status.ID != n.Status.ID || recordedID(o) != recordedID(n) || o.Generation != n.Generation ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() || isPaused(o) != isPaused(n) ||
				meta.IsStatusConditionTrue(o.Status.Conditions, iamv1alpha1.ConditionStalled) !=
					meta.IsStatusConditionTrue(n.Status.Conditions, iamv1alpha1.ConditionStalled)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// membershipsNaming enqueues the memberships that name a CipherscaleUser, by reference or email,
// and those of the groups its spec.groups names.
func (r *MembershipReconciler) membershipsNaming(ctx context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*iamv1alpha1.CipherscaleUser)
	if !ok {
		return nil
	}
	keys := map[client.ObjectKey]bool{}
	collect := func(field, value string) {
		var list iamv1alpha1.CipherscaleGroupMembershipList
		if err := r.Kube.List(ctx, &list, client.MatchingFields{field: scoped(tenantOf(u), value)}); err != nil {
			return
		}
		for i := range list.Items {
			keys[client.ObjectKeyFromObject(&list.Items[i])] = true
		}
	}
	collect(indexMembershipMember, memberKeyRef(u.Namespace, u.Name))
	collect(indexMembershipMember, memberKeyEmail(u.Spec.Email))
	if u.Spec.Groups != nil {
		for _, g := range *u.Spec.Groups {
			collect(indexMembershipGroup, plan.NormalizeID(g))
		}
	}
	return requests(keys)
}

// sameGroup enqueues the other memberships of the same group.
func (r *MembershipReconciler) sameGroup(ctx context.Context, o client.Object) []reconcile.Request {
	m, ok := o.(*iamv1alpha1.CipherscaleGroupMembership)
	if !ok {
		return nil
	}
	var list iamv1alpha1.CipherscaleGroupMembershipList
	if err := r.Kube.List(ctx, &list, client.MatchingFields{indexMembershipGroup: scoped(tenantOf(m), plan.NormalizeID(m.Spec.GroupID))}); err != nil {
		return nil
	}
	keys := map[client.ObjectKey]bool{}
	for i := range list.Items {
		if list.Items[i].UID != m.UID {
			keys[client.ObjectKeyFromObject(&list.Items[i])] = true
		}
	}
	return requests(keys)
}

func requests(keys map[client.ObjectKey]bool) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(keys))
	for k := range keys {
		reqs = append(reqs, reconcile.Request{NamespacedName: k})
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].String() < reqs[j].String() })
	return reqs
}
