package tenant

import (
	"sync"
	"time"
)

// DefaultMaxPasses is how many reconciles of one tenant's objects run at once when the registry
// sets no other bound: half of the operator's 16 workers by default. A tenant whose API is slow
// holds at most that many workers while its calls are answered; the others serve the other
// tenants.
const DefaultMaxPasses = 8

// holdGrace is how long a held pass waits past its turn for its object to come back before it
// is freed (the object was deleted, or its worker is late).
const holdGrace = 10 * time.Second

// passes bounds the reconciles of one tenant's objects in progress, counting those that wait,
// without a worker, for their turn of the rate limit. A reconcile that finds them all taken does
// not wait: it leaves its wake function and gives its worker back, and the first pass freed
// wakes the longest waiting one. So the tenant's work in progress, and the turns reserved ahead
// of its rate limit, stay bounded, and its objects are served in the order they came.
type passes struct {
	mu      sync.Mutex
	max     int
	running int
	order   []string
	waiting map[string]func()
	held    map[string]*Pass
}

// Pass is one of the tenant's passes, taken by Enter.
type Pass struct {
	p     *passes
	key   string
	timer *time.Timer
	done  bool // freed, or taken over by the next Enter of its key
	held  bool
}

// Enter takes one of the tenant's passes for the reconcile of key: the one key held (Hold)
// when it has one, else a free one. When none is free it returns false and keeps wake, called
// once (without blocking) when a pass frees up: the caller gives its worker back and comes
// again then. The pass is released (Release) when the reconcile ends. A tenant without a bound
// (MaxPasses 0) always lets in.
func (t *Tenant) Enter(key string, wake func()) (*Pass, bool) {
	p := &t.passes
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.held[key]; h != nil {
		delete(p.held, key)
		h.timer.Stop()
		h.done = true
		return &Pass{p: p, key: key}, true
	}
	if p.max > 0 && p.running >= p.max {
		if p.waiting == nil {
			p.waiting = map[string]func(){}
		}
		if _, queued := p.waiting[key]; !queued {
			p.order = append(p.order, key)
		}
		p.waiting[key] = wake
		return nil, false
	}
	p.running++
	delete(p.waiting, key) // it got in without being woken: it no longer waits
	return &Pass{p: p, key: key}, true
}

// Hold keeps the pass for the next Enter of its key, the reconcile's worker given back while
// its object waits d for its turn of the rate limit; past d and a grace, it is freed.
func (ps *Pass) Hold(d time.Duration) {
	if ps == nil {
		return
	}
	p := ps.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if ps.done || ps.held {
		return
	}
	ps.held = true
	if p.held == nil {
		p.held = map[string]*Pass{}
	}
	p.held[ps.key] = ps
	ps.timer = time.AfterFunc(d+holdGrace, func() {
		p.mu.Lock()
		if ps.done || p.held[ps.key] != ps {
			p.mu.Unlock()
			return
		}
		delete(p.held, ps.key)
		ps.done = true
		p.mu.Unlock()
		p.leave()
	})
}

// Release frees the pass, unless it is held.
func (ps *Pass) Release() {
	if ps == nil {
		return
	}
	p := ps.p
	p.mu.Lock()
	if ps.done || ps.held {
		p.mu.Unlock()
		return
	}
	ps.done = true
	p.mu.Unlock()
	p.leave()
}

func (p *passes) leave() {
	p.mu.Lock()
	p.running--
	var wake func()
	for len(p.order) > 0 && wake == nil {
		k := p.order[0]
		p.order = p.order[1:]
		wake = p.waiting[k]
		delete(p.waiting, k)
	}
	if len(p.order) == 0 {
		p.order = nil
	}
	p.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// contended reports whether reconciles of the tenant's objects wait: for a pass, or, holding
// one, for their turn of the rate limit. Their work is still to come.
func (t *Tenant) contended() bool {
	t.passes.mu.Lock()
	defer t.passes.mu.Unlock()
	return len(t.passes.waiting) > 0 || len(t.passes.held) > 0
}

// Waiting returns how many reconciles wait for a pass of the tenant.
func (t *Tenant) Waiting() int {
	t.passes.mu.Lock()
	defer t.passes.mu.Unlock()
	return len(t.passes.waiting)
}
