package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// removalsWaiting is, per tenant, how many removals wait for the tenant's removal budget.
var removalsWaiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "cipherscale_removals_waiting",
	Help: "Delete or deactivate calls that wait because the tenant's removal budget is spent.",
}, []string{"tenant"})

func init() {
	metrics.Registry.MustRegister(removalsWaiting)
}
