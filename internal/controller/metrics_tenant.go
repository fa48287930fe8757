package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// tenantVecs are the metric vectors with a "tenant" label: every series of a tenant is deleted
// when its tenant object goes (forgetTenantMetrics), so that tenants created and deleted leave
// nothing behind in the registry.
func tenantVecs() []*prometheus.MetricVec {
	return []*prometheus.MetricVec{
		apiRequests.MetricVec, apiLatency.MetricVec, apiRateLimitWait.MetricVec, apiThrottled.MetricVec,
		usersByState.MetricVec, removalsWaiting.MetricVec, undeclaredUsers.MetricVec,
	}
}

// forgetTenantMetrics deletes every series labeled with the tenant of key, and what the state
// tracker remembers of it. It returns how many series it deleted.
func forgetTenantMetrics(key tenant.Key) int {
	label := key.String()
	userStates.forgetTenant(label)
	n := 0
	for _, v := range tenantVecs() {
		n += v.DeletePartialMatch(prometheus.Labels{"tenant": label})
	}
	return n
}

// forgetTenant forgets the objects of one tenant and deletes its series of cipherscale_users.
func (t *stateTracker) forgetTenant(tenantLabel string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.state {
		if s.tenant == tenantLabel {
			delete(t.state, k)
		}
	}
	usersByState.DeletePartialMatch(prometheus.Labels{"tenant": tenantLabel})
}
