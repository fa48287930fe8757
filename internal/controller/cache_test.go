package controller

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// decodedUser builds a user whose strings are all distinct allocations, as a watch decodes them.
func decodedUser(name string) *iamv1alpha1.CipherscaleUser {
	c := strings.Clone
	roles := []string{c("role-admin")}
	groups := []string{c("group-1")}
	return &iamv1alpha1.CipherscaleUser{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: c("team"), Name: c(name),
			Finalizers: []string{c(iamv1alpha1.GroupVersion.Group + "/finalizer")},
			Annotations: map[string]string{
				c(corev1.LastAppliedConfigAnnotation): c(`{"apiVersion":"iam.cipherscale.com/v1alpha1"}`),
				c(iamv1alpha1.AnnotationUserID):       c("id-" + name),
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: iamv1alpha1.CipherscaleUserSpec{Email: c(name + "@example.com"), Roles: &roles, Groups: &groups},
		Status: iamv1alpha1.CipherscaleUserStatus{
			ID:         c("id-" + name),
			State:      iamv1alpha1.UserState(c("Active")),
			Conditions: []metav1.Condition{{Type: c("Ready"), Reason: c("Synced"), Message: c("in sync with " + name)}},
			Roles:      []iamv1alpha1.TenantRef{{ID: c("role-admin"), Name: c("Admin")}},
			Groups:     []iamv1alpha1.TenantRef{{ID: c("group-1"), Name: c("Group 1")}},
		},
	}
}

func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

func TestCacheTransform(t *testing.T) {
	transform := CacheTransform()
	a, b := decodedUser("a"), decodedUser("b")
	want := a.DeepCopy()
	want.ManagedFields = nil
	delete(want.Annotations, corev1.LastAppliedConfigAnnotation)
	for _, u := range []*iamv1alpha1.CipherscaleUser{a, b} {
		if _, err := transform(u); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("transformed object\n%+v\nwant\n%+v", a, want)
	}
	if _, ok := b.Annotations[corev1.LastAppliedConfigAnnotation]; ok || b.Annotations[iamv1alpha1.AnnotationUserID] != "id-b" {
		t.Errorf("annotations %v: want the user id only", b.Annotations)
	}
	for _, p := range [][2]string{
		{a.Namespace, b.Namespace}, {a.Finalizers[0], b.Finalizers[0]},
		{(*a.Spec.Roles)[0], (*b.Spec.Roles)[0]}, {(*a.Spec.Groups)[0], (*b.Spec.Groups)[0]},
		{a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason},
		{a.Status.Roles[0].Name, b.Status.Roles[0].Name}, {a.Status.Groups[0].ID, b.Status.Groups[0].ID},
		{(*a.Spec.Roles)[0], a.Status.Roles[0].ID}, {string(a.Status.State), string(b.Status.State)},
	} {
		if !same(p[0], p[1]) {
			t.Errorf("%q is held twice", p[0])
		}
	}
	// Objects of other kinds, and what is not an object, pass through.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{}", "k": "v"}}}
	if _, err := transform(cm); err != nil || len(cm.Annotations) != 1 || cm.Annotations["k"] != "v" {
		t.Errorf("configmap annotations %v, %v", cm.Annotations, err)
	}
	if out, err := transform("not an object"); err != nil || out != "not an object" {
		t.Errorf("a non-object: %v, %v", out, err)
	}
}
