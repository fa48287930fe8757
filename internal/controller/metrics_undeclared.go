package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// undeclaredUsers is status.undeclared.count of each tenant whose policy is not Ignore. A tenant
// that goes back to Ignore, or is deleted, has its series deleted
// (undeclaredUsers.DeleteLabelValues(tenant)) rather than set to 0.
var undeclaredUsers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "cipherscale_undeclared_users",
	Help: "Users of the tenant that no CipherscaleUser or membership declares, the owner and excluded addresses included.",
}, []string{"tenant"})

func init() {
	metrics.Registry.MustRegister(undeclaredUsers)
}
