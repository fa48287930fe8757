package controller

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

func budgetObj(name string) *iamv1alpha1.CipherscaleUser {
	return &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)}}
}

// TestEndRemoval: after its call, a removal gives its unit back only when the API refused the
// call; it keeps it (for its retry) when the call may have been applied; it ends when the call
// succeeded or found the user gone.
func TestEndRemoval(t *testing.T) {
	apiErr := func(status int) error {
		return fmt.Errorf("deleting user u1: %w", &cipherscale.APIError{Status: status, Method: "DELETE", Route: "DELETE /tenants/users/{id}"})
	}
	cases := []struct {
		name string
		err  error
		// spent is the window's units after the call; heldForRetry: a retry spends nothing more.
		spent        int
		heldForRetry bool
	}{
		{"success", nil, 1, false},
		{"404: the user is gone", apiErr(404), 1, false},
		{"gone, as the tenant layer says", fmt.Errorf("x: %w", tenant.ErrUserGone), 1, false},
		{"403 refused", apiErr(403), 0, false},
		{"400 refused", apiErr(400), 0, false},
		{"429 not processed", apiErr(429), 0, false},
		{"500 may have removed", apiErr(500), 1, true},
		{"503 may have removed", apiErr(503), 1, true},
		{"no answer", context.DeadlineExceeded, 1, true},
		{"connection reset", errors.New("read: connection reset by peer"), 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
			b := tenant.NewRemovalBudget(5, func() time.Time { return now })
			r := userScopeOf(tenant.New(nil, tenant.Options{RemovalBudget: b}))
			obj := budgetObj("a")
			if w := mustReserve(t, r, obj); w != nil {
				t.Fatalf("reserve: %v", w)
			}
			r.endRemoval(obj, c.err)
			if got := b.Status().Spent; got != c.spent {
				t.Fatalf("spent after the call: %d, want %d", got, c.spent)
			}
			now = now.Add(time.Second)
			if w := mustReserve(t, r, obj); w != nil {
				t.Fatalf("retry: %v", w)
			}
			want := c.spent + 1
			if c.heldForRetry {
				want = c.spent
			}
			if got := b.Status().Spent; got != want {
				t.Fatalf("spent after the retry's reserve: %d, want %d", got, want)
			}
		})
	}
}

// TestRemovalWaits: past the budget a removal waits, once however often it asks, and classify
// keeps its object Reconciling with RemovalBudgetExceeded; the budget tripped, so the hour
// freeing its units releases nothing; the object's removal ending (restored) clears the trip.
func TestRemovalWaits(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	b := tenant.NewRemovalBudget(2, func() time.Time { return now })
	r := userScopeOf(tenant.New(nil, tenant.Options{RemovalBudget: b}))
	for _, n := range []string{"a", "b"} {
		if w := mustReserve(t, r, budgetObj(n)); w != nil {
			t.Fatalf("%s: %v", n, w)
		}
		r.endRemoval(budgetObj(n), nil)
	}
	now = now.Add(10 * time.Minute)
	var w *removalWaitError
	for range 3 {
		if w = mustReserve(t, r, budgetObj("c")); w == nil {
			t.Fatal("c was allowed past the budget")
		}
	}
	if w.waiting != 1 || w.retryAfter != 15*time.Minute {
		t.Fatalf("waiting %d, retry after %s; want 1 and 15m", w.waiting, w.retryAfter)
	}
	v := classify(fmt.Errorf("deactivating: %w", w))
	if v.stalled || v.reason != iamv1alpha1.ReasonRemovalBudgetExceeded || v.requeueAfter != 15*time.Minute {
		t.Fatalf("verdict %+v", v)
	}
	if got := b.WaitingKeys(); len(got) != 1 {
		t.Fatalf("waiting keys %v", got)
	} else if key, ok := objectOfRemoval(got[0]); !ok || key != (types.NamespacedName{Namespace: "ns", Name: "c"}) {
		t.Fatalf("key %q names %v", got[0], key)
	}
	now = now.Add(2 * time.Hour)
	if w := mustReserve(t, r, budgetObj("c")); w == nil {
		t.Fatal("two hours later, time alone let a removal through a tripped budget")
	}
	// Another object of the same name (a new uid) is another removal.
	other := budgetObj("c")
	other.UID = "uid-other"
	if w := mustReserve(t, r, other); w == nil || w.waiting != 2 {
		t.Fatalf("another object of the same name: %v", w)
	}
	// The objects are recreated (or set active again): their removals stop waiting, and with
	// nothing left waiting the trip clears.
	r.removalNotWanted(budgetObj("c"))
	r.removalNotWanted(other)
	if b.Waiting() != 0 {
		t.Fatal("a removal no longer wanted still waits")
	}
	if w := mustReserve(t, r, budgetObj("d")); w != nil {
		t.Fatalf("after the trip cleared: %v", w)
	}
}

func TestObjectOfRemoval(t *testing.T) {
	for _, k := range []string{"undeclared/abc", "user/ns", "user//x", "user/ns/", "user/ns/never-seen"} {
		if _, ok := objectOfRemoval(k); ok {
			t.Errorf("%q names an object", k)
		}
	}
}

// TestRemovalStatusStep: at the end of a pass, a waiting deactivation stops waiting when the
// spec no longer asks for it or the user is inactive already; it keeps waiting otherwise, and a
// deleting object's removal is reconcileDelete's to end.
func TestRemovalStatusStep(t *testing.T) {
	f, tr := false, true
	now := metav1.Now()
	cases := []struct {
		name      string
		active    *bool
		state     iamv1alpha1.UserState
		deleting  bool
		stillWait bool
	}{
		{"active omitted", nil, iamv1alpha1.UserStateActive, false, false},
		{"active true again", &tr, iamv1alpha1.UserStateActive, false, false},
		{"active false, user active", &f, iamv1alpha1.UserStateActive, false, true},
		{"active false, user pending", &f, iamv1alpha1.UserStatePending, false, true},
		{"active false, deactivated by hand", &f, iamv1alpha1.UserStateInactive, false, false},
		{"being deleted", nil, iamv1alpha1.UserStateActive, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := tenant.NewRemovalBudget(1, nil)
			r := userScopeOf(tenant.New(nil, tenant.Options{RemovalBudget: b}))
			if w := mustReserve(t, r, budgetObj("first")); w != nil {
				t.Fatal(w)
			}
			obj := budgetObj("x")
			obj.Spec.Active, obj.Status.State = c.active, c.state
			if c.deleting {
				obj.DeletionTimestamp = &now
			}
			if w := mustReserve(t, r, obj); w == nil {
				t.Fatal("x did not wait")
			}
			r.removalStatusStep(obj)
			if got := b.Waiting() == 1; got != c.stillWait {
				t.Fatalf("still waiting: %v, want %v", got, c.stillWait)
			}
		})
	}
}

// mustReserve reserves the object's removal on a budget that saves nothing, where the save
// cannot fail.
func mustReserve(t *testing.T, r *userScope, obj *iamv1alpha1.CipherscaleUser) *removalWaitError {
	t.Helper()
	w, err := r.reserveRemoval(context.Background(), obj)
	if err != nil {
		t.Fatalf("reserve: %v", err)
	}
	return w
}

// userScopeOf is the scope of a pass over tenant t, with nothing else resolved.
func userScopeOf(t *tenant.Tenant) *userScope {
	return &userScope{tenantScope: tenantScope{tenant: t, budget: t.RemovalBudget()}, statusScope: &statusScope{}}
}
