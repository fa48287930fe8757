// The CipherscaleUser controller's watches: its own kind, the other objects of an email, the
// memberships that name a user, the tenants, and the wakes of removals and creates.

package controller

import (
	"context"
	"maps"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// SetupWithManager registers the controller: it watches CipherscaleUsers (spec, annotation and
// deletion changes), the other CipherscaleUsers with the same email (one leaving hands the email
// to the next), and the memberships that name a user (they change which groups it may keep).
func (r *UserReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := checkSetup("UserReconciler", r.Kube, r.Resolver, r.Recorder, r.Clock, r.ResyncInterval); err != nil {
		return err
	}
	r.creates = &createLog{}
	r.wake = &waker{}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 1
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("cipherscaleuser").
		For(&iamv1alpha1.CipherscaleUser{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, personAnnotationChanged(), deletionPredicate()))).
		Watches(&iamv1alpha1.CipherscaleUser{}, handler.EnqueueRequestsFromMapFunc(r.sameEmail),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false },
				UpdateFunc: func(e event.UpdateEvent) bool {
					return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
				},
				DeleteFunc:  func(event.DeleteEvent) bool { return true },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Watches(&iamv1alpha1.CipherscaleGroupMembership{}, handler.EnqueueRequestsFromMapFunc(r.membersOf),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: rateLimiter(r.ResyncInterval)})
	b = watchTenants(b, mgr, r.Resolver, func() client.ObjectList { return &iamv1alpha1.CipherscaleUserList{} })
	if r.RemovalWake != nil {
		b = b.WatchesRawSource(source.Channel(r.RemovalWake, &handler.EnqueueRequestForObject{}))
	}
	// The answers of queued creates wake their objects through the controller's queue.
	return wakeThrough(b, r.wake).Complete(r)
}

// sameEmail enqueues the other CipherscaleUsers that name the same email.
func (r *UserReconciler) sameEmail(ctx context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*iamv1alpha1.CipherscaleUser)
	if !ok {
		return nil
	}
	var list iamv1alpha1.CipherscaleUserList
	if err := r.Kube.List(ctx, &list, client.MatchingFields{indexUserEmail: scoped(tenantOf(u), cipherscale.NormalizeEmail(u.Spec.Email))}); err != nil {
		// The objects waiting for the email are not woken now: their resync finds it free.
		log.FromContext(ctx).Error(err, "Listing the CipherscaleUsers of an email to wake them", "namespace", u.Namespace, "name", u.Name)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].UID != u.UID {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// membersOf enqueues the CipherscaleUsers a membership names.
func (r *UserReconciler) membersOf(ctx context.Context, o client.Object) []reconcile.Request {
	m, ok := o.(*iamv1alpha1.CipherscaleGroupMembership)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	seen := map[client.ObjectKey]bool{}
	addKey := func(k client.ObjectKey) {
		if !seen[k] {
			seen[k] = true
			reqs = append(reqs, reconcile.Request{NamespacedName: k})
		}
	}
	for _, mem := range m.Spec.Members {
		if mem.UserRef != nil {
			addKey(client.ObjectKey{Namespace: m.Namespace, Name: mem.UserRef.Name})
			continue
		}
		var list iamv1alpha1.CipherscaleUserList
		if err := r.Kube.List(ctx, &list, client.MatchingFields{indexUserEmail: scoped(tenantOf(m), cipherscale.NormalizeEmail(mem.Email))}); err != nil {
			// That member's object is not woken now: its resync sees the membership.
			log.FromContext(ctx).Error(err, "Listing the CipherscaleUsers a membership names to wake them", "namespace", m.Namespace, "name", m.Name)
			continue
		}
		for i := range list.Items {
			addKey(client.ObjectKeyFromObject(&list.Items[i]))
		}
	}
	return reqs
}

// personAnnotationChanged passes updates that change an annotation other than the identity
// annotations the reconciler itself writes (those would only wake it to redo its own pass).
func personAnnotationChanged() predicate.Predicate {
	strip := func(a map[string]string) map[string]string {
		out := make(map[string]string, len(a))
		for k, v := range a {
			if k != iamv1alpha1.AnnotationUserID && k != iamv1alpha1.AnnotationCreatePending && k != iamv1alpha1.AnnotationUserIDProof {
				out[k] = v
			}
		}
		return out
	}
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !maps.Equal(strip(e.ObjectOld.GetAnnotations()), strip(e.ObjectNew.GetAnnotations()))
		},
		CreateFunc:  func(event.CreateEvent) bool { return true },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}

// deletionPredicate passes updates that start an object's deletion.
func deletionPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
