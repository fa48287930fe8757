package simulator

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"golang.org/x/time/rate"
)

// FaultRule injects a fault into the API requests it matches. Rules are checked in order for each
// request that passed the API key and the rate limit. Every matching rule that fires (per Rate, and
// while it has Count left) adds its latency; the first firing rule with a Status or Drop decides
// the outcome and ends the search, so a latency-only rule can be combined with a later status rule.
type FaultRule struct {
	// Route is a template such as "POST /tenants/users" (the cipherscale.Route* constants); empty
	// matches every API route.
	Route string `json:"route,omitempty"`
	// Status answers with this status instead of serving: the request is NOT applied.
	Status int `json:"status,omitempty"`
	// Rate is the share (0..1) of matching requests the rule fires for; nil means all.
	Rate *float64 `json:"rate,omitempty"`
	// RetryAfterSeconds sets Retry-After on the faulted (Status) response.
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
	// LatencyMs delays the request before it is handled. The request is still applied if the
	// client gave up meanwhile, as a slow real service would: a timed-out create may have happened.
	LatencyMs int `json:"latencyMs,omitempty"`
	// Drop applies the request, then closes the connection without writing a response (through
	// http.Hijacker; where the writer cannot be hijacked it panics with http.ErrAbortHandler, which
	// net/http turns into an aborted response). With a Status, the request is not applied and the
	// connection is closed without a response.
	Drop bool `json:"drop,omitempty"`
	// Count is how many times the rule fires at most; 0 means unlimited.
	Count int `json:"count,omitempty"`
}

// validate reports a rule the control surface refuses.
func (r FaultRule) validate() error {
	switch {
	case r.Route != "" && !apiRoutes[r.Route]:
		return fmt.Errorf("unknown route %q", r.Route)
	case r.Status != 0 && (r.Status < 100 || r.Status > 599):
		return fmt.Errorf("status %d is not an HTTP status", r.Status)
	case r.Rate != nil && (*r.Rate < 0 || *r.Rate > 1):
		return fmt.Errorf("rate %v is not within 0..1", *r.Rate)
	case r.RetryAfterSeconds < 0 || r.LatencyMs < 0 || r.Count < 0:
		return fmt.Errorf("retryAfterSeconds, latencyMs and count must not be negative")
	}
	return nil
}

type faultState struct {
	rule  FaultRule
	fired int
}

// fault is what the rules decided for one request.
type fault struct {
	latency    time.Duration
	status     int
	retryAfter int
	drop       bool
}

// SetFaults replaces the fault rules.
func (s *Server) SetFaults(rules []FaultRule) {
	states := make([]*faultState, 0, len(rules))
	for _, r := range rules {
		if r.Rate != nil {
			v := *r.Rate
			r.Rate = &v
		}
		states = append(states, &faultState{rule: r})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = states
}

// ClearFaults removes every fault rule.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) pickFault(route string) fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	var f fault
	for _, st := range s.faults {
		r := st.rule
		if r.Route != "" && r.Route != route {
			continue
		}
		if r.Count > 0 && st.fired >= r.Count {
			continue
		}
		if r.Rate != nil && rand.Float64() >= *r.Rate {
			continue
		}
		st.fired++
		f.latency += time.Duration(r.LatencyMs) * time.Millisecond
		if r.Status != 0 || r.Drop {
			f.status = r.Status
			f.drop = r.Drop
			if r.Status != 0 {
				f.retryAfter = r.RetryAfterSeconds
			}
			break
		}
	}
	return f
}

// SetLimit limits the API to requestsPerSecond with the given burst (a token bucket, at least 1);
// beyond it requests are answered 429 with Retry-After. requestsPerSecond <= 0 removes the limit.
func (s *Server) SetLimit(requestsPerSecond float64, burst int) {
	var lim *rate.Limiter
	if requestsPerSecond > 0 {
		if burst < 1 {
			burst = 1
		}
		lim = rate.NewLimiter(rate.Limit(requestsPerSecond), burst)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limiter = lim
}

// Stats counts the API requests served (not those of /_sim/), by route template and status.
type Stats struct {
	Total    int         `json:"total"`
	Requests []RouteStat `json:"requests"`
}

// RouteStat is the number of requests of one route answered with one status. Route is a template
// such as "GET /tenants/users/{id}", or "unmatched".
type RouteStat struct {
	Route  string `json:"route"`
	Status int    `json:"status"`
	Count  int    `json:"count"`
}

// Count returns the number of requests of a route, whatever their status.
func (s Stats) Count(route string) int {
	n := 0
	for _, r := range s.Requests {
		if r.Route == route {
			n += r.Count
		}
	}
	return n
}

// CountStatus returns the number of requests of a route answered with status.
func (s Stats) CountStatus(route string, status int) int {
	n := 0
	for _, r := range s.Requests {
		if r.Route == route && r.Status == status {
			n += r.Count
		}
	}
	return n
}

type statKey struct {
	route  string
	status int
}

func (s *Server) record(route string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats[statKey{route, status}]++
	s.total++
}

// Stats returns the request counts, sorted by route and status.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Total: s.total, Requests: make([]RouteStat, 0, len(s.stats))}
	for k, n := range s.stats {
		out.Requests = append(out.Requests, RouteStat{Route: k.route, Status: k.status, Count: n})
	}
	sort.Slice(out.Requests, func(i, j int) bool {
		a, b := out.Requests[i], out.Requests[j]
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		return a.Status < b.Status
	})
	return out
}

// ResetStats clears the request counts.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = map[statKey]int{}
	s.total = 0
}
