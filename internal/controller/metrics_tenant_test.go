package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// seriesOf counts the series of the operator's registry labeled with the tenant.
func seriesOf(t *testing.T, label string) int {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == label {
					n++
				}
			}
		}
	}
	return n
}

// TestForgetTenantMetrics: the series of a deleted tenant go, every one; another tenant's stay.
func TestForgetTenantMetrics(t *testing.T) {
	gone, kept := tenant.NamespacedKey("ns-metrics", "gone"), tenant.ClusterKey("kept-metrics")
	for _, k := range []tenant.Key{gone, kept} {
		o := TenantMetrics(k)
		o.ObserveRequest(cipherscale.RouteListUsers, 200, time.Millisecond)
		o.ObserveRequest(cipherscale.RouteCreateUsers, 429, time.Millisecond)
		o.ObserveRateLimitWait(time.Millisecond)
		o.ObserveThrottled(cipherscale.RouteCreateUsers, time.Second)
		userStates.set(types.NamespacedName{Namespace: "ns-metrics", Name: "u-" + k.Name}, k.String(), "Active")
		removalsWaiting.WithLabelValues(k.String()).Set(3)
		undeclaredUsers.WithLabelValues(k.String()).Set(7)
	}
	if seriesOf(t, gone.String()) < 7 || seriesOf(t, kept.String()) < 7 {
		t.Fatalf("the test's series are not there: %d and %d", seriesOf(t, gone.String()), seriesOf(t, kept.String()))
	}
	before := seriesOf(t, kept.String())

	if n := forgetTenantMetrics(gone); n == 0 {
		t.Error("forgetTenantMetrics deleted nothing")
	}
	if n := seriesOf(t, gone.String()); n != 0 {
		t.Errorf("%d series of the deleted tenant are left", n)
	}
	if n := seriesOf(t, kept.String()); n != before {
		t.Errorf("the other tenant has %d series, had %d", n, before)
	}
	// The tracker forgot the deleted tenant's objects: a later change does not bring its series back.
	userStates.set(types.NamespacedName{Namespace: "ns-metrics", Name: "u-" + gone.Name}, "", "")
	if n := seriesOf(t, gone.String()); n != 0 {
		t.Errorf("%d series of the deleted tenant came back", n)
	}
	forgetTenantMetrics(kept)
}
