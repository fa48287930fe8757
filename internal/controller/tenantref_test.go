package controller

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

func TestTenantKeyOf(t *testing.T) {
	for _, tc := range []struct {
		ref  *iamv1alpha1.TenantReference
		want tenant.Key
	}{
		{nil, tenant.ClusterKey("default")},
		{&iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}, tenant.NamespacedKey("team-a", "qa")},
		{&iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: "prod"}, tenant.ClusterKey("prod")},
	} {
		if got := tenantKeyOf("team-a", tc.ref); got != tc.want {
			t.Errorf("tenantKeyOf(team-a, %+v) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}

// TestReferrersOf: a tenant maps to exactly the objects that name it, through the index.
func TestReferrersOf(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := iamv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	byTenant := func(o client.Object) []string {
		return []string{tenantKeyOf(o.GetNamespace(), tenantRefOf(o)).String()}
	}
	user := func(ns, name string, ref *iamv1alpha1.TenantReference) *iamv1alpha1.CipherscaleUser {
		return &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: iamv1alpha1.CipherscaleUserSpec{Email: name + "@example.com", TenantRef: ref}}
	}
	qa := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}
	prod := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: "prod"}
	kube := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&iamv1alpha1.CipherscaleUser{}, indexTenant, byTenant).
		WithIndex(&iamv1alpha1.CipherscaleGroupMembership{}, indexTenant, byTenant).
		WithObjects(
			user("a", "on-qa", qa), user("b", "on-b-qa", qa), user("a", "on-prod", prod),
			user("b", "also-on-prod", prod), user("a", "on-default", nil),
			&iamv1alpha1.CipherscaleGroupMembership{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "m"},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: "g", TenantRef: qa}},
		).Build()

	names := func(f handler.MapFunc, o client.Object) []string {
		var out []string
		for _, r := range f(context.Background(), o) {
			out = append(out, r.String())
		}
		sort.Strings(out)
		return out
	}
	users := referrersOf(kube, func() client.ObjectList { return &iamv1alpha1.CipherscaleUserList{} })
	memberships := referrersOf(kube, func() client.ObjectList { return &iamv1alpha1.CipherscaleGroupMembershipList{} })
	nsTenant := &iamv1alpha1.CipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "qa"}}
	clusterTenant := &iamv1alpha1.ClusterCipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	defaultTenant := &iamv1alpha1.ClusterCipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Name: "default"}}

	for _, tc := range []struct {
		what string
		got  []string
		want []string
	}{
		{"users of a/qa: not b's qa", names(users, nsTenant), []string{"a/on-qa"}},
		{"users of prod, in any namespace", names(users, clusterTenant), []string{"a/on-prod", "b/also-on-prod"}},
		{"memberships of a/qa", names(memberships, nsTenant), []string{"a/m"}},
		{"memberships of prod", names(memberships, clusterTenant), nil},
		{"users without tenantRef: the default tenant's", names(users, defaultTenant), []string{"a/on-default"}},
		{"not a tenant", names(users, user("a", "x", nil)), nil},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.what, diff)
		}
	}
}
