package controller

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// CacheTransform is the manager's cache transform: it drops from every cached object what no
// controller reads, and shares the strings thousands of CipherscaleUsers repeat, so that the
// cache of 10,000 users is smaller. Every write of the controllers is a patch computed against
// the cached object (see status.go and identity.go), so what is dropped is never dropped on the
// server; nothing the controllers read is changed, only its memory shared.
//
// Dropped: managedFields, and kubectl's last-applied-configuration annotation (a copy of the
// whole object as last applied, the largest field of an object applied with kubectl apply).
func CacheTransform() toolscache.TransformFunc {
	strip := cache.TransformStripManagedFields()
	return func(in any) (any, error) {
		in, err := strip(in)
		if err != nil {
			return in, err
		}
		if o, ok := in.(metav1.Object); ok {
			delete(o.GetAnnotations(), corev1.LastAppliedConfigAnnotation)
		}
		switch o := in.(type) {
		case *iamv1alpha1.CipherscaleUser:
			internUser(o)
		case *iamv1alpha1.CipherscaleGroupMembership:
			internMeta(&o.ObjectMeta)
			internConditions(o.Status.Conditions)
		}
		return in, nil
	}
}

// intern returns the one shared copy of s. Only strings that repeat across objects go through
// it: namespaces, finalizer names, condition types and reasons, role and group ids and names.
// (Annotation names are not: sharing a map's keys means building the map again.)
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

func internMeta(m *metav1.ObjectMeta) {
	m.Namespace = intern(m.Namespace)
	for i := range m.Finalizers {
		m.Finalizers[i] = intern(m.Finalizers[i])
	}
}

func internConditions(cs []metav1.Condition) {
	for i := range cs {
		cs[i].Type = intern(cs[i].Type)
		cs[i].Reason = intern(cs[i].Reason)
	}
}

func internUser(u *iamv1alpha1.CipherscaleUser) {
	internMeta(&u.ObjectMeta)
	internConditions(u.Status.Conditions)
	for _, ids := range []*[]iamv1alpha1.ID{u.Spec.Roles, u.Spec.Groups} {
		if ids != nil {
			for i := range *ids {
				(*ids)[i] = intern((*ids)[i])
			}
		}
	}
	for _, refs := range [][]iamv1alpha1.TenantRef{u.Status.Roles, u.Status.Groups} {
		for i := range refs {
			refs[i].ID = intern(refs[i].ID)
			refs[i].Name = intern(refs[i].Name)
		}
	}
	u.Status.State = iamv1alpha1.UserState(intern(string(u.Status.State)))
}
