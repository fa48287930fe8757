package tenant_test

import (
	"context"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

const simKey = "tenant-test-key-0c1d2e"

// newSim serves a fresh simulator over httptest and returns it with a real client of it.
func newSim(t *testing.T) (*simulator.Server, *cipherscale.Client) {
	t.Helper()
	return newSimObserved(t, nil)
}

// newSimObserved is newSim with an observer of the client's metrics.
func newSimObserved(t *testing.T, obs cipherscale.Observer) (*simulator.Server, *cipherscale.Client) {
	t.Helper()
	sim := simulator.New(simKey)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	api, err := cipherscale.New(cipherscale.Config{
		BaseURL:  srv.URL,
		Key:      cipherscale.StaticKey(simKey),
		QPS:      1000,
		Burst:    1000,
		Observer: obs,
	})
	if err != nil {
		t.Fatalf("cipherscale.New: %v", err)
	}
	return sim, api
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clock is a fake Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hold stops one ListUsers call until released.
type hold struct {
	before  bool // wait before reading the tenant (else after reading it)
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *hold) Release() { h.once.Do(func() { close(h.release) }) }

// Reached waits until the held call reached its hold.
func (h *hold) Reached(t *testing.T) {
	t.Helper()
	select {
	case <-h.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the held ListUsers call never came")
	}
}

// gatedAPI is the real client with a ListUsers that can be held and that counts its calls.
type gatedAPI struct {
	cipherscale.API
	lists atomic.Int32

	mu   sync.Mutex
	next *hold
}

// HoldNextList holds the next ListUsers call, before or after it reads the tenant.
func (g *gatedAPI) HoldNextList(t *testing.T, before bool) *hold {
	h := &hold{before: before, reached: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.Release)
	g.mu.Lock()
	g.next = h
	g.mu.Unlock()
	return h
}

func (g *gatedAPI) ListUsers(ctx context.Context) ([]cipherscale.User, error) {
	g.lists.Add(1)
	g.mu.Lock()
	h := g.next
	g.next = nil
	g.mu.Unlock()
	wait := func() error {
		close(h.reached)
		select {
		case <-h.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if h != nil && h.before {
		if err := wait(); err != nil {
			return nil, err
		}
	}
	users, err := g.API.ListUsers(ctx)
	if h != nil && !h.before {
		if werr := wait(); werr != nil {
			return nil, werr
		}
	}
	return users, err
}

// readWaiters counts the goroutines of calls of fn (Lookup, SharedUsers) blocked in a select:
// the only place such a call blocks is waiting for the shared read it joined. It reads the
// goroutine dump: the only way to know, without hooks in the code under test, that a caller has
// joined the read in flight rather than being about to start its own.
func readWaiters(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") && strings.Contains(g, "tenant.(*Tenant)."+fn+"(") {
			count++
		}
	}
	return count
}

// waitReadWaiters waits until n calls of fn wait for the read in flight.
func waitReadWaiters(t *testing.T, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for readWaiters(fn) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls of %s joined the refresh in flight, want %d", readWaiters(fn), fn, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// throttleObserver reports, once, that the client received a 429 and paused.
type throttleObserver struct {
	once      sync.Once
	throttled chan struct{}
}

func (o *throttleObserver) ObserveRequest(string, int, time.Duration) {}
func (o *throttleObserver) ObserveRateLimitWait(time.Duration)        {}
func (o *throttleObserver) ObserveThrottled(string, time.Duration) {
	o.once.Do(func() { close(o.throttled) })
}

func listRequests(sim *simulator.Server) int { return sim.Stats().Count(cipherscale.RouteListUsers) }

func sortedIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, strings.ToLower(id))
	}
	slices.Sort(out)
	return out
}

// newTenant returns a tenant over a gated client of sim.
func newTenant(api cipherscale.API, opts tenant.Options) (*tenant.Tenant, *gatedAPI) {
	g := &gatedAPI{API: api}
	return tenant.New(g, opts), g
}
