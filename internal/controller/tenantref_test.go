package controller

import (
	"context"
	"errors"
	"sort"
	"strings"
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

// TestResolveBusyIsNotBroken: a tenant that is only busy or unreachable (Ready False, not
// Stalled) is used, and its objects' own calls say so; a tenant a person must fix (Stalled) is
// refused; a tenant not loaded yet is retried, not refused; an object being deleted is told why
// its finalizer waits when its tenant cannot be loaded.
func TestResolveBusyIsNotBroken(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := iamv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: "m"}
	}
	tenantWith := func(name string, conds ...metav1.Condition) *iamv1alpha1.CipherscaleTenant {
		return &iamv1alpha1.CipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name},
			Status: iamv1alpha1.TenantStatus{Conditions: conds}}
	}
	objs := []client.Object{
		tenantWith("ready", cond(iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)),
		tenantWith("busy", cond(iamv1alpha1.ConditionReady, metav1.ConditionFalse, iamv1alpha1.ReasonAPIUnavailable),
			cond(iamv1alpha1.ConditionReconciling, metav1.ConditionTrue, iamv1alpha1.ReasonAPIUnavailable)),
		tenantWith("unchecked"),
		tenantWith("budget", cond(iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate),
			cond(iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonRemovalBudgetExceeded)),
		tenantWith("no-secret", cond(iamv1alpha1.ConditionReady, metav1.ConditionFalse, iamv1alpha1.ReasonInvalidSecret),
			cond(iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonInvalidSecret)),
		tenantWith("refused-key", cond(iamv1alpha1.ConditionReady, metav1.ConditionFalse, iamv1alpha1.ReasonUnauthorized),
			cond(iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonUnauthorized)),
		tenantWith("not-loaded", cond(iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)),
		tenantWith("gone-secret", cond(iamv1alpha1.ConditionReady, metav1.ConditionFalse, iamv1alpha1.ReasonInvalidSecret),
			cond(iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonInvalidSecret)),
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	reg := tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: func(context.Context, tenant.SecretRef) (string, error) { return "k", nil }})
	for _, name := range []string{"ready", "busy", "unchecked", "budget", "no-secret", "refused-key"} {
		if _, err := reg.Ensure(tenant.NamespacedKey("a", name), tenant.Config{URL: "https://public-api.cipherscale.com/qa",
			Secret: tenant.SecretRef{Namespace: "a", Name: "s", Key: "api-key"}}); err != nil {
			t.Fatal(err)
		}
	}
	r := &TenantResolver{Kube: kube, Tenants: reg}
	user := func(tenantName string, deleting bool) *iamv1alpha1.CipherscaleUser {
		u := &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "u"},
			Spec: iamv1alpha1.CipherscaleUserSpec{Email: "u@example.com",
				TenantRef: &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: tenantName}}}
		if deleting {
			now := metav1.Now()
			u.DeletionTimestamp = &now
		}
		return u
	}
	for _, tc := range []struct {
		tenant   string
		deleting bool
		use      bool
		refusal  string // a part of it, when refused
		retry    bool
	}{
		{tenant: "ready", use: true},
		{tenant: "busy", use: true},
		{tenant: "unchecked", use: true},
		{tenant: "budget", use: true},
		{tenant: "no-secret", refusal: "cannot be used until it is fixed (InvalidSecret)"},
		{tenant: "refused-key", refusal: "(Unauthorized)"},
		{tenant: "no-secret", deleting: true, use: true},
		{tenant: "not-loaded", retry: true},
		{tenant: "gone-secret", deleting: true, refusal: "deletion policy cannot be carried out"},
	} {
		got, _, refusal, err := r.Resolve(context.Background(), user(tc.tenant, tc.deleting))
		switch {
		case tc.use && (got == nil || refusal != "" || err != nil):
			t.Errorf("%s (deleting %v): want the tenant, got %v, %q, %v", tc.tenant, tc.deleting, got, refusal, err)
		case tc.refusal != "" && (got != nil || err != nil || !strings.Contains(refusal, tc.refusal)):
			t.Errorf("%s (deleting %v): want a refusal with %q, got %v, %q, %v", tc.tenant, tc.deleting, tc.refusal, got, refusal, err)
		case tc.retry && (got != nil || refusal != "" || !errors.Is(err, errTenantNotLoaded)):
			t.Errorf("%s: want errTenantNotLoaded, got %v, %q, %v", tc.tenant, got, refusal, err)
		}
	}
}
