package controller

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

var (
	apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cipherscale_api_requests_total",
		Help: "Requests to the Cipherscale API by tenant, route and status code (0: no HTTP answer).",
	}, []string{"tenant", "route", "code"})
	apiLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cipherscale_api_request_duration_seconds",
		Help:    "Latency of requests to the Cipherscale API by tenant and route.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"tenant", "route"})
	apiRateLimitWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cipherscale_api_rate_limit_wait_seconds",
		Help:    "Time calls waited for their tenant's rate limit or 429 pause, by tenant.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"tenant"})
	apiThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cipherscale_api_throttled_total",
		Help: "429 answers from the Cipherscale API by tenant and route.",
	}, []string{"tenant", "route"})
	usersByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cipherscale_users",
		Help: "CipherscaleUsers by tenant and the state of their tenant user.",
	}, []string{"tenant", "state"})
	driftCorrections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cipherscale_drift_corrections_total",
		Help: "Differences found in the tenant, without a spec change, and corrected, by kind.",
	}, []string{"kind"})
	timeToReady = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cipherscale_time_to_first_ready_seconds",
		Help:    "Time from an object's creation to its first Ready, by kind.",
		Buckets: prometheus.ExponentialBuckets(0.25, 2, 14),
	}, []string{"kind"})
)

func init() {
	metrics.Registry.MustRegister(apiRequests, apiLatency, apiRateLimitWait, apiThrottled,
		usersByState, driftCorrections, timeToReady)
}

// APIMetrics records one tenant's Cipherscale client's requests as Prometheus metrics, with
// the tenant label Tenant. It implements cipherscale.Observer.
type APIMetrics struct {
	// Tenant is the tenant label: the tenant key's String.
	Tenant string
}

// TenantMetrics returns the observer of the tenant with this key: the registry's ObserverFor.
func TenantMetrics(k tenant.Key) cipherscale.Observer { return APIMetrics{Tenant: k.String()} }

func (m APIMetrics) tenant() string { return m.Tenant }

// ObserveRequest counts one request and its latency.
func (m APIMetrics) ObserveRequest(route string, status int, d time.Duration) {
	apiRequests.WithLabelValues(m.tenant(), route, strconv.Itoa(status)).Inc()
	apiLatency.WithLabelValues(m.tenant(), route).Observe(d.Seconds())
}

// ObserveRateLimitWait records a wait for the rate limit.
func (m APIMetrics) ObserveRateLimitWait(d time.Duration) {
	apiRateLimitWait.WithLabelValues(m.tenant()).Observe(d.Seconds())
}

// ObserveThrottled counts a 429.
func (m APIMetrics) ObserveThrottled(route string, _ time.Duration) {
	apiThrottled.WithLabelValues(m.tenant(), route).Inc()
}

// stateTracker keeps cipherscale_users{tenant,state} equal to the states of the
// CipherscaleUsers this process has seen.
type stateTracker struct {
	mu    sync.Mutex
	state map[types.NamespacedName]tenantState
}

// tenantState is the labels of one object in cipherscale_users.
type tenantState struct{ tenant, state string }

var userStates = &stateTracker{state: map[types.NamespacedName]tenantState{}}

// set records the state of one object of a tenant (the key's String); "" forgets it.
func (t *stateTracker) set(key types.NamespacedName, tenantLabel, state string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := tenantState{tenant: tenantLabel, state: state}
	old, had := t.state[key]
	if had && old == now {
		return
	}
	if had {
		usersByState.WithLabelValues(old.tenant, old.state).Dec()
		delete(t.state, key)
	}
	if state != "" {
		t.state[key] = now
		usersByState.WithLabelValues(now.tenant, now.state).Inc()
	}
}
