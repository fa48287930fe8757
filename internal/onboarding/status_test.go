package onboarding

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

func condition(typ, status, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason, Message: msg}
}

func TestStatusScreen(t *testing.T) {
	s := runtime.NewScheme()
	if err := iamv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	prod := &iamv1alpha1.ClusterCipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}
	prod.Spec.UndeclaredUsers = &iamv1alpha1.UndeclaredUsersSpec{Policy: iamv1alpha1.UndeclaredUsersReport}
	prod.Status.Conditions = []metav1.Condition{
		condition("Ready", "True", "UpToDate", "The API key works: the tenant has 40 users"),
	}
	declared := int32(30)
	prod.Status.Users = &iamv1alpha1.TenantUsers{Total: 40, Active: 35, Pending: 3, Inactive: 2}
	prod.Status.Declared = &declared
	prod.Status.Undeclared = &iamv1alpha1.UndeclaredStatus{Count: 10}
	prod.Status.RemovalBudget = &iamv1alpha1.TenantRemovalBudgetStatus{PerHour: 25, Spent: 4}
	ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: "prod"}
	objs := []client.Object{prod}
	for i := range 7 {
		u := &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: fmt.Sprintf("u%d", i)}}
		u.Spec.Email = fmt.Sprintf("u%d@example.com", i)
		u.Spec.TenantRef = ref
		switch {
		case i < 6:
			u.Status.Conditions = []metav1.Condition{condition("Ready", "False", "AdoptionNotAllowed", ""), condition("Stalled", "True", "AdoptionNotAllowed", "")}
		default:
			u.Status.Conditions = []metav1.Condition{condition("Ready", "True", "UpToDate", "")}
		}
		objs = append(objs, u)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	tenants, err := ReadStatus(context.Background(), c, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 1 {
		t.Fatalf("%d tenants, want 1", len(tenants))
	}
	var b bytes.Buffer
	WriteStatus(&b, tenants[0], "")
	want := `ClusterCipherscaleTenant/prod: Ready
  Users:       40: 35 active, 3 pending, 2 inactive; 30 declared
  Undeclared:  10 (policy Report)
               kubectl get ccst prod -o jsonpath='{.status.undeclared.emails}'
  Removals:    4 spent in the last hour (budget 25 per hour); 0 waiting
  Objects:     7: 1 Ready, 0 Reconciling, 6 Stalled
    Stalled AdoptionNotAllowed: 6
      csu team/u0
      csu team/u1
      csu team/u2
      csu team/u3
      csu team/u4
      and 1 more: kubectl cipherscale status --tenant ClusterCipherscaleTenant/prod --reason AdoptionNotAllowed
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("screen (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10 undeclared users", "6 objects not Ready"}, tenants[0].NeedsPerson()); diff != "" {
		t.Errorf("NeedsPerson (-want +got):\n%s", diff)
	}

	b.Reset()
	WriteStatus(&b, tenants[0], "AdoptionNotAllowed")
	if !bytes.Contains(b.Bytes(), []byte("      csu team/u5\n")) || bytes.Contains(b.Bytes(), []byte("and 1 more")) {
		t.Errorf("--reason lists every object of the reason:\n%s", b.String())
	}

	// Everything Ready, policy Ignore: nothing needs a person.
	prod.Spec.UndeclaredUsers = nil
	ok := &TenantState{Ref: TenantRef{Kind: KindClusterTenant, Name: "prod"}, Found: true, Spec: prod.Spec.TenantSettings, Status: prod.Status,
		Objects: []StatusObject{{Kind: "CipherscaleUser", Namespace: "team", Name: "u6", Condition: "Ready", Reason: "UpToDate"}}}
	if n := ok.NeedsPerson(); len(n) != 0 {
		t.Errorf("NeedsPerson of a Ready tenant = %v", n)
	}

	// No tenant object: its objects say whether the operator can use it.
	missing := &TenantState{Ref: DefaultTenant,
		Objects: []StatusObject{{Kind: "CipherscaleUser", Namespace: "team", Name: "u7", Condition: "Ready", Reason: "UpToDate"}}}
	if n := missing.NeedsPerson(); len(n) != 0 {
		t.Errorf("NeedsPerson of a tenant without object whose objects are Ready = %v", n)
	}
	missing.Objects[0].Condition, missing.Objects[0].Reason = "Stalled", "InvalidTenant"
	if diff := cmp.Diff([]string{"1 object not Ready"}, missing.NeedsPerson()); diff != "" {
		t.Errorf("NeedsPerson of a tenant without object (-want +got):\n%s", diff)
	}
}
