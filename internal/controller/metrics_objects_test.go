package controller

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"

	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// gatherObjectSeries returns the series of the collector's metrics that the registry serves,
// as "name{label=value,...} value" lines, sorted.
func gatherObjectSeries(t *testing.T) []string {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		switch f.GetName() {
		case "cipherscale_objects", "cipherscale_tenant_condition", "cipherscale_removal_budget_per_hour",
			"cipherscale_removals_spent", "cipherscale_undeclared_users_policy":
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out = append(out, f.GetName()+"{"+strings.Join(ls, ",")+"} "+strings.TrimSuffix(strings.TrimSuffix(
				strings.TrimPrefix(m.GetGauge().String(), "value:"), " "), ".0"))
		}
	}
	sort.Strings(out)
	return out
}

func cond(typ, status, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason}
}

func TestObjectMetrics(t *testing.T) {
	s := runtime.NewScheme()
	if err := iamv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	prod := &iamv1alpha1.ClusterCipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	prod.Spec.UndeclaredUsers = &iamv1alpha1.UndeclaredUsersSpec{Policy: iamv1alpha1.UndeclaredUsersReport}
	prod.Status.Conditions = []metav1.Condition{cond("Ready", "False", "Unauthorized"), cond("Stalled", "True", "Unauthorized")}
	prod.Status.RemovalBudget = &iamv1alpha1.TenantRemovalBudgetStatus{PerHour: 25, Spent: 25, Waiting: 3}
	qa := &iamv1alpha1.CipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "qa"}}
	qa.Status.Conditions = []metav1.Condition{cond("Ready", "True", "UpToDate")}
	prodRef := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: "prod"}
	user := func(ns, name string, ref *iamv1alpha1.TenantReference, cs ...metav1.Condition) client.Object {
		u := &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		u.Spec.Email = name + "@example.com"
		u.Spec.TenantRef = ref
		u.Status.Conditions = cs
		return u
	}
	objs := []client.Object{prod, qa,
		user("team", "a", prodRef, cond("Ready", "True", "UpToDate")),
		user("team", "b", prodRef, cond("Ready", "False", "AdoptionNotAllowed"), cond("Stalled", "True", "AdoptionNotAllowed")),
		user("team", "c", prodRef, cond("Ready", "False", "AdoptionNotAllowed"), cond("Stalled", "True", "AdoptionNotAllowed")),
		user("team", "d", prodRef, cond("Ready", "False", "RemovalBudgetExceeded"), cond("Reconciling", "True", "RemovalBudgetExceeded")),
		user("team", "e", &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}, cond("Ready", "True", "UpToDate")),
		user("team", "new", prodRef),
		// Made-up tenant names share one label value.
		user("team", "f", &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: "made-up-1"}),
		user("team", "g", &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: "made-up-2"}),
		&iamv1alpha1.CipherscaleGroupMembership{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "m"},
			Spec:   iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: "g", TenantRef: prodRef},
			Status: iamv1alpha1.CipherscaleGroupMembershipStatus{Conditions: []metav1.Condition{cond("Ready", "True", "UpToDate")}}},
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource().Build()

	notLeader := make(chan struct{})
	objectMetrics.set(c, nil, notLeader, false)
	defer objectMetrics.set(nil, nil, nil, false)
	if got := gatherObjectSeries(t); len(got) != 0 {
		t.Errorf("a process that is not the leader exports %v", got)
	}

	close(notLeader)
	want := []string{
		"cipherscale_objects{condition=Ready,kind=CipherscaleGroupMembership,reason=UpToDate,tenant=ClusterCipherscaleTenant/prod} 1",
		"cipherscale_objects{condition=Ready,kind=CipherscaleUser,reason=UpToDate,tenant=CipherscaleTenant/team/qa} 1",
		"cipherscale_objects{condition=Ready,kind=CipherscaleUser,reason=UpToDate,tenant=ClusterCipherscaleTenant/prod} 1",
		"cipherscale_objects{condition=Reconciling,kind=CipherscaleUser,reason=RemovalBudgetExceeded,tenant=ClusterCipherscaleTenant/prod} 1",
		"cipherscale_objects{condition=Reconciling,kind=CipherscaleUser,reason=Unknown,tenant=ClusterCipherscaleTenant/prod} 1",
		"cipherscale_objects{condition=Reconciling,kind=CipherscaleUser,reason=Unknown,tenant=none} 2",
		"cipherscale_objects{condition=Stalled,kind=CipherscaleUser,reason=AdoptionNotAllowed,tenant=ClusterCipherscaleTenant/prod} 2",
		"cipherscale_removal_budget_per_hour{tenant=ClusterCipherscaleTenant/prod} 25",
		"cipherscale_removals_spent{tenant=ClusterCipherscaleTenant/prod} 25",
		"cipherscale_tenant_condition{condition=Ready,reason=UpToDate,tenant=CipherscaleTenant/team/qa} 1",
		"cipherscale_tenant_condition{condition=Stalled,reason=Unauthorized,tenant=ClusterCipherscaleTenant/prod} 1",
		"cipherscale_undeclared_users_policy{policy=Ignore,tenant=CipherscaleTenant/team/qa} 1",
		"cipherscale_undeclared_users_policy{policy=Report,tenant=ClusterCipherscaleTenant/prod} 1",
	}
	if diff := cmp.Diff(want, gatherObjectSeries(t)); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func TestRateLimitMetric(t *testing.T) {
	reg := tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: func(context.Context, tenant.SecretRef) (string, error) { return "k", nil }})
	if _, err := reg.Ensure(tenant.ClusterKey("default"), tenant.Config{URL: "https://public-api.cipherscale.com/qa", QPS: 7, Burst: 3,
		Secret: tenant.SecretRef{Namespace: "ns", Name: "key", Key: "api-key"}}); err != nil {
		t.Fatal(err)
	}
	s := runtime.NewScheme()
	if err := iamv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	elected := make(chan struct{})
	close(elected)
	objectMetrics.set(fake.NewClientBuilder().WithScheme(s).Build(), reg, elected, false)
	defer objectMetrics.set(nil, nil, nil, false)
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if f.GetName() == "cipherscale_api_rate_limit" {
			for _, m := range f.GetMetric() {
				got = append(got, m.GetLabel()[0].GetValue()+" "+strings.TrimSpace(m.GetGauge().String()))
			}
		}
	}
	if diff := cmp.Diff([]string{"ClusterCipherscaleTenant/default value:7"}, got); diff != "" {
		t.Errorf("cipherscale_api_rate_limit (-want +got):\n%s", diff)
	}
}
