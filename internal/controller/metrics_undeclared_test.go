package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// gatherUndeclared returns the series of cipherscale_undeclared_users that controller-runtime's
// registry serves, by tenant.
func gatherUndeclared(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "cipherscale_undeclared_users" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// TestUndeclaredUsersMetric: the gauge is served by controller-runtime's registry under its
// documented name, one series per tenant, and a deleted series is gone.
func TestUndeclaredUsersMetric(t *testing.T) {
	t.Cleanup(undeclaredUsers.Reset)
	undeclaredUsers.WithLabelValues("prod").Set(380)
	undeclaredUsers.WithLabelValues("qa").Set(2)
	if diff := cmp.Diff(map[string]float64{"prod": 380, "qa": 2}, gatherUndeclared(t)); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	undeclaredUsers.DeleteLabelValues("qa")
	if diff := cmp.Diff(map[string]float64{"prod": 380}, gatherUndeclared(t)); diff != "" {
		t.Errorf("after deleting qa (-want +got):\n%s", diff)
	}
}
