package controller

import (
	"context"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestDefaultUndeclared: the default tenant's policy from the flags. Declared are the users its
// objects name (not those of another tenant's objects); the owner and an excluded address are
// counted and never touched; nothing is done within the grace period; past it, exactly the
// budget's worth of users is deactivated and the rest waits; a user declared before its turn is
// saved.
func TestDefaultUndeclared(t *testing.T) {
	t.Cleanup(undeclaredUsers.Reset)
	sim := simulator.New("key")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	add := func(seed simulator.UserSeed) {
		seed.Status = cipherscale.StatusActive
		if _, err := sim.AddUser(seed); err != nil {
			t.Fatal(err)
		}
	}
	add(simulator.UserSeed{Email: "owner@x.example", IsOwner: true})
	for _, e := range []string{"a1@x.example", "a2@x.example", "a3@x.example", "a4@x.example", "a5@x.example", "a6@x.example", "a7@x.example"} {
		add(simulator.UserSeed{Email: e})
	}

	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	api, err := cipherscale.New(cipherscale.Config{BaseURL: srv.URL, Key: cipherscale.StaticKey("key"), QPS: 1000, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	reg := tenant.NewRegistry(tenant.RegistryOptions{RemovalBudget: 2, Now: clk.Now})
	// As main.go wires it: the default tenant carries its budget, which the registry shares.
	reg.SetDefault(tenant.New(api, tenant.Options{MaxAge: time.Minute, Now: clk.Now, RemovalBudget: tenant.NewRemovalBudget(2, clk.Now)}))

	scheme := runtime.NewScheme()
	if err := iamv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	byTenant := func(o client.Object) []string {
		return []string{tenantKeyOf(o.GetNamespace(), tenantRefOf(o)).String()}
	}
	qa := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}
	user := func(name, mail string, ref *iamv1alpha1.TenantReference) *iamv1alpha1.CipherscaleUser {
		return &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name},
			Spec: iamv1alpha1.CipherscaleUserSpec{Email: mail, TenantRef: ref}}
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&iamv1alpha1.CipherscaleUser{}, indexTenant, byTenant).
		WithIndex(&iamv1alpha1.CipherscaleGroupMembership{}, indexTenant, byTenant).
		WithIndex(&iamv1alpha1.CipherscaleUser{}, indexUserEmail, func(o client.Object) []string {
			return []string{scoped(tenantOf(o), cipherscale.NormalizeEmail(o.(*iamv1alpha1.CipherscaleUser).Spec.Email))}
		}).
		WithIndex(&iamv1alpha1.CipherscaleGroupMembership{}, indexMembershipMember, func(o client.Object) []string {
			var keys []string
			for _, m := range o.(*iamv1alpha1.CipherscaleGroupMembership).Spec.Members {
				if m.Email != "" {
					keys = append(keys, scoped(tenantOf(o), memberKeyEmail(m.Email)))
				}
			}
			return keys
		}).
		WithObjects(
			user("a1", "A1@x.example", nil),
			user("a4-elsewhere", "a4@x.example", qa), // another tenant's object declares nothing here
			&iamv1alpha1.CipherscaleGroupMembership{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "m"},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: "g", Members: []iamv1alpha1.Member{{Email: "a2@x.example"}}}},
		).Build()

	d := &DefaultUndeclared{Kube: kube, Tenants: reg, Clock: clk, Interval: 10 * time.Minute, Policy: UndeclaredPolicy{
		Policy: plan.UndeclaredDeactivate, Exclude: []string{"a3@*"}, GracePeriod: time.Hour,
	}}
	ctx := context.Background()
	pass := func() time.Duration {
		t.Helper()
		after, err := d.pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return after
	}
	inactive := func() []string {
		var out []string
		for _, u := range sim.Users() {
			if u.Status == cipherscale.StatusInactive {
				out = append(out, u.Email)
			}
		}
		sort.Strings(out)
		return out
	}

	// Within the grace period: reported, nothing done, and the next pass is due when it ends.
	if after := pass(); after != time.Hour {
		t.Errorf("first pass: requeue after %v, want 1h", after)
	}
	if got := gatherUndeclared(t)["default"]; got != 6 {
		t.Errorf("metric = %v, want 6 (owner, a3 excluded, a4..a7)", got)
	}
	if got := inactive(); len(got) != 0 {
		t.Fatalf("deactivated within the grace period: %v", got)
	}

	// a7 is declared before the grace period ends.
	if err := kube.Create(ctx, user("a7", "a7@x.example", nil)); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Hour)
	after := pass()
	// Users first seen together go in the order of their ids: any two of a4, a5 and a6.
	got := inactive()
	if len(got) != 2 || !sort.StringsAreSorted(got) || got[0] < "a4@x.example" || got[1] > "a6@x.example" {
		t.Errorf("deactivated after the grace period, within a budget of 2: %v, want two of a4, a5 and a6", got)
	}
	if st := reg.Budget(tenant.DefaultKey).Status(); st.Spent != 2 || st.Waiting != 1 {
		t.Errorf("budget = %+v, want 2 spent and 1 waiting", st)
	}
	if after != tenant.RemovalWindow {
		t.Errorf("requeue after %v, want the budget's next unit in %v", after, tenant.RemovalWindow)
	}

	// An hour later the window frees: the last one goes; the owner, a3 and a7 stay.
	clk.Step(tenant.RemovalWindow)
	pass()
	if diff := cmp.Diff([]string{"a4@x.example", "a5@x.example", "a6@x.example"}, inactive()); diff != "" {
		t.Errorf("deactivated in all (-want +got):\n%s", diff)
	}
	if n := sim.Stats().Count(cipherscale.RouteDeactivateUser); n != 3 {
		t.Errorf("%d deactivate calls, want 3: each user once, the owner and excluded never", n)
	}
	if got := gatherUndeclared(t)["default"]; got != 5 {
		t.Errorf("metric = %v, want 5 (a7 declared, the deactivated still undeclared)", got)
	}
}

// TestRunUndeclaredConfirmsByID: a removal rests on a GET by id, never on the list alone. A user
// the list shows but the tenant no longer has, one the list shows active but who is inactive
// now, and one that became the owner are left alone and spend no unit of the budget.
func TestRunUndeclaredConfirmsByID(t *testing.T) {
	sim := simulator.New("key")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api, err := cipherscale.New(cipherscale.Config{BaseURL: srv.URL, Key: cipherscale.StaticKey("key"), QPS: 1000, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	ten := tenant.New(api, tenant.Options{MaxAge: time.Minute})
	add := func(seed simulator.UserSeed) cipherscale.User {
		u, err := sim.AddUser(seed)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	gone := add(simulator.UserSeed{Email: "gone@x.example", Status: cipherscale.StatusActive})
	inactiveNow := add(simulator.UserSeed{Email: "inactive@x.example", Status: cipherscale.StatusActive})
	ownerNow := add(simulator.UserSeed{Email: "owner@x.example", IsOwner: true, Status: cipherscale.StatusActive})
	due := add(simulator.UserSeed{Email: "due@x.example", Status: cipherscale.StatusActive})
	// The list, as read before the tenant changed.
	list := sim.Users()
	for i := range list {
		list[i].IsOwner = false
		list[i].Roles = nil
	}
	if err := ten.Delete(context.Background(), gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := ten.Deactivate(context.Background(), inactiveNow.ID); err != nil {
		t.Fatal(err)
	}
	sim.ResetStats()

	budget := tenant.NewRemovalBudget(10, nil)
	out, err := runUndeclared(context.Background(), undeclaredRun{
		Tenant: ten, Budget: budget, Users: list, Declared: map[string]struct{}{},
		Policy:      UndeclaredPolicy{Policy: plan.UndeclaredDeactivate},
		Now:         time.Now(),
		DeclaredNow: func(context.Context, string) (bool, error) { return false, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Removed != 1 || out.Waiting != 0 || out.Failed != nil {
		t.Errorf("outcome = removed %d, waiting %d, failed %v; want 1 removed", out.Removed, out.Waiting, out.Failed)
	}
	if n := sim.Stats().Count(cipherscale.RouteDeactivateUser); n != 1 {
		t.Errorf("%d deactivate calls, want 1 (only %s)", n, due.Email)
	}
	if n := sim.Stats().Count(cipherscale.RouteGetUser); n != 4 {
		t.Errorf("%d reads by id, want 4: one per planned removal", n)
	}
	if st := budget.Status(); st.Spent != 1 {
		t.Errorf("budget spent %d, want 1: a removal not made gives its unit back", st.Spent)
	}
	if u, _ := sim.UserByEmail(ownerNow.Email); u.Status != cipherscale.StatusActive {
		t.Errorf("the owner is %s", u.Status)
	}
}

// TestRunUndeclaredDelete: Delete removes every undeclared user past the grace period, inactive
// ones included, and never the owner or an excluded address.
func TestRunUndeclaredDelete(t *testing.T) {
	sim := simulator.New("key")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api, err := cipherscale.New(cipherscale.Config{BaseURL: srv.URL, Key: cipherscale.StaticKey("key"), QPS: 1000, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	ten := tenant.New(api, tenant.Options{MaxAge: time.Minute})
	for _, seed := range []simulator.UserSeed{
		{Email: "owner@x.example", IsOwner: true, Status: cipherscale.StatusActive},
		{Email: "keep@partner.example", Status: cipherscale.StatusActive},
		{Email: "declared@x.example", Status: cipherscale.StatusActive},
		{Email: "old@x.example", Status: cipherscale.StatusInactive},
		{Email: "pending@x.example"},
		{Email: "active@x.example", Status: cipherscale.StatusActive},
	} {
		if _, err := sim.AddUser(seed); err != nil {
			t.Fatal(err)
		}
	}
	budget := tenant.NewRemovalBudget(10, nil)
	out, err := runUndeclared(context.Background(), undeclaredRun{
		Tenant: ten, Budget: budget, Users: sim.Users(),
		Declared:    map[string]struct{}{"declared@x.example": {}},
		Policy:      UndeclaredPolicy{Policy: plan.UndeclaredDelete, Exclude: []string{"*@partner.example"}},
		Now:         time.Now(),
		DeclaredNow: func(context.Context, string) (bool, error) { return false, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, u := range sim.Users() {
		left = append(left, u.Email)
	}
	sort.Strings(left)
	if diff := cmp.Diff([]string{"declared@x.example", "keep@partner.example", "owner@x.example"}, left); diff != "" {
		t.Errorf("users left (-want +got):\n%s", diff)
	}
	if out.Removed != 3 || out.Plan.Report.Count != 5 || out.Plan.Protected != 2 {
		t.Errorf("removed %d, undeclared %d, protected %d; want 3, 5, 2", out.Removed, out.Plan.Report.Count, out.Plan.Protected)
	}
	if n := sim.Stats().Count(cipherscale.RouteDeleteUser); n != 3 {
		t.Errorf("%d delete calls, want 3", n)
	}
}
