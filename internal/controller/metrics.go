package controller

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cipherscale_api_requests_total",
		Help: "Requests to the Cipherscale API by route and status code (0: no HTTP answer).",
	}, []string{"route", "code"})
	apiLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cipherscale_api_request_duration_seconds",
		Help:    "Latency of requests to the Cipherscale API by route.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"route"})
	apiRateLimitWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cipherscale_api_rate_limit_wait_seconds",
		Help:    "Time calls waited for the client's rate limit or a 429 pause.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})
	apiThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cipherscale_api_throttled_total",
		Help: "429 answers from the Cipherscale API by route.",
	}, []string{"route"})
	usersByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cipherscale_users",
		Help: "CipherscaleUsers by the state of their tenant user.",
	}, []string{"state"})
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

// APIMetrics records the Cipherscale client's requests as Prometheus metrics. It implements
// cipherscale.Observer.
type APIMetrics struct{}

// ObserveRequest counts one request and its latency.
func (APIMetrics) ObserveRequest(route string, status int, d time.Duration) {
	apiRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	apiLatency.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveRateLimitWait records a wait for the rate limit.
func (APIMetrics) ObserveRateLimitWait(d time.Duration) { apiRateLimitWait.Observe(d.Seconds()) }

// ObserveThrottled counts a 429.
func (APIMetrics) ObserveThrottled(route string, _ time.Duration) {
	apiThrottled.WithLabelValues(route).Inc()
}

// stateTracker keeps cipherscale_users{state} equal to the states of the CipherscaleUsers this
// process has seen.
type stateTracker struct {
	mu    sync.Mutex
	state map[types.NamespacedName]string
}

var userStates = &stateTracker{state: map[types.NamespacedName]string{}}

// set records the state of one object; "" forgets it.
func (t *stateTracker) set(key types.NamespacedName, state string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, had := t.state[key]
	if had && old == state {
		return
	}
	if had {
		usersByState.WithLabelValues(old).Dec()
		delete(t.state, key)
	}
	if state != "" {
		t.state[key] = state
		usersByState.WithLabelValues(state).Inc()
	}
}
