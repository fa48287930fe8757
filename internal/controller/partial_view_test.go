package controller

import (
	"testing"

	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestPartialViewRefusesRemovals: an operator that watches only some namespaces removes no
// undeclared user of a ClusterCipherscaleTenant (users declared where it does not look would be
// removed); Report, a CipherscaleTenant and an operator that watches everything are unaffected.
func TestPartialViewRefusesRemovals(t *testing.T) {
	cluster, namespaced := tenant.ClusterKey("prod"), tenant.NamespacedKey("team-a", "qa")
	for _, tc := range []struct {
		some   bool
		key    tenant.Key
		policy plan.UndeclaredPolicy
		refuse bool
	}{
		{true, cluster, plan.UndeclaredDelete, true},
		{true, cluster, plan.UndeclaredDeactivate, true},
		{true, cluster, plan.UndeclaredReport, false},
		{true, cluster, plan.UndeclaredIgnore, false},
		{true, namespaced, plan.UndeclaredDelete, false},
		{false, cluster, plan.UndeclaredDelete, false},
	} {
		r := &TenantReconciler{WatchesSomeNamespaces: tc.some}
		err := r.partialView(tc.key, undeclaredPolicy{Policy: tc.policy})
		if (err != nil) != tc.refuse {
			t.Errorf("watching some namespaces %v, %s, %s: err %v, want refused %v", tc.some, tc.key, tc.policy, err, tc.refuse)
		}
	}
}
