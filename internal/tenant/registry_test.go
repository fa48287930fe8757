package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// loopbackHTTP is the URL policy of the tests: the simulator, on loopback over plain http.
var loopbackHTTP = cipherscale.URLPolicy{Hosts: []string{"127.0.0.1", "localhost"}, AllowInsecureHTTP: true}

// secrets is an in-memory set of Secrets behind a ReadSecretFunc that counts its reads.
type secrets struct {
	mu    sync.Mutex
	data  map[tenant.SecretRef]string
	fail  error
	reads int
}

func (s *secrets) set(ref tenant.SecretRef, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.data = map[tenant.SecretRef]string{}
	}
	s.data[ref] = v
}

func (s *secrets) remove(ref tenant.SecretRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, ref)
}

func (s *secrets) setFailure(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *secrets) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func (s *secrets) read(_ context.Context, ref tenant.SecretRef) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.fail != nil {
		return "", s.fail
	}
	v, ok := s.data[ref]
	if !ok {
		return "", fmt.Errorf("%w: %s does not exist", tenant.ErrInvalidSecret, ref)
	}
	return v, nil
}

func serveSim(t *testing.T, key string) (*simulator.Server, string) {
	t.Helper()
	sim := simulator.New(key)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

func TestKeyString(t *testing.T) {
	for _, tc := range []struct {
		key  tenant.Key
		want string
	}{
		{tenant.ClusterKey(tenant.DefaultName), "ClusterCipherscaleTenant/default"},
		{tenant.ClusterKey("prod"), "ClusterCipherscaleTenant/prod"},
		{tenant.NamespacedKey("team-a", "qa"), "CipherscaleTenant/team-a/qa"},
	} {
		if got := tc.key.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// TestSecretKeyRotation follows a key through its life: read once and reused, read again when
// old, after a 401 (at most once a second), and refused when the Secret goes.
func TestSecretKeyRotation(t *testing.T) {
	const good, bad = "good-key-3f9a1c", "bad-key-77aa01"
	_, url := serveSim(t, good)
	clk := newClock()
	sec := &secrets{}
	ref := tenant.SecretRef{Namespace: "ns", Name: "s", Key: "api-key"}
	sec.set(ref, good)
	reg := tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: sec.read, Now: clk.Now, KeyMaxAge: time.Minute, URLPolicy: loopbackHTTP})
	k := tenant.NamespacedKey("ns", "qa")
	tn, err := reg.Ensure(k, tenant.Config{URL: url, QPS: 1000, Burst: 1000, ResyncInterval: time.Minute, Secret: ref})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	list := func() error { _, err := tn.API().ListUsers(ctx); return err }

	for range 5 {
		if err := list(); err != nil {
			t.Fatalf("list with a good key: %v", err)
		}
	}
	if n := sec.count(); n != 1 {
		t.Errorf("the Secret was read %d times for 5 calls, want 1", n)
	}

	By := func(s string) { t.Log(s) }
	By("the Secret rotated to a key the API refuses: used once the key is a minute old")
	sec.set(ref, bad)
	if err := list(); err != nil {
		t.Fatalf("the old key is used until it is a minute old: %v", err)
	}
	clk.Advance(61 * time.Second)
	err = list()
	if !cipherscale.IsUnauthorized(err) {
		t.Fatalf("want a 401 with the bad key, got %v", err)
	}
	if strings.Contains(err.Error(), bad) {
		t.Error("the error holds the key")
	}

	By("the Secret fixed: the 401 made the key stale, read again after a second")
	sec.set(ref, good)
	if err := list(); !cipherscale.IsUnauthorized(err) {
		t.Fatalf("within a second of the last read the key is not read again, got %v", err)
	}
	clk.Advance(2 * time.Second)
	if err := list(); err != nil {
		t.Fatalf("after the 401 and a second, the fixed key is read: %v", err)
	}
	if n := sec.count(); n != 3 {
		t.Errorf("the Secret was read %d times, want 3 (first, after a minute, after the 401)", n)
	}

	By("a transient read error keeps the last good key")
	clk.Advance(2 * time.Minute)
	sec.setFailure(errors.New("the API server is down"))
	if err := list(); err != nil {
		t.Fatalf("a transient Secret read error must keep the last good key: %v", err)
	}
	sec.setFailure(nil)

	By("the Secret deleted: ReloadKey says so, and calls fail without a key")
	v1, err := reg.ReloadKey(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	sec.remove(ref)
	v2, err := reg.ReloadKey(ctx, k)
	if !errors.Is(err, tenant.ErrInvalidSecret) {
		t.Fatalf("ReloadKey of a deleted Secret = %v, want ErrInvalidSecret", err)
	}
	if v2 == v1 {
		t.Error("the key version did not change when the key went")
	}
	if err := list(); !errors.Is(err, tenant.ErrInvalidSecret) {
		t.Fatalf("a call without a Secret = %v, want ErrInvalidSecret", err)
	}

	By("the tenant draining (its object deleted while objects still use it): the last good key goes on")
	reg.Drain(k)
	clk.Advance(2 * time.Second)
	if err := list(); err != nil {
		t.Fatalf("a draining tenant without its Secret must use the last good key: %v", err)
	}

	By("the Secret back: the version changes again, and the same key keeps its version")
	sec.set(ref, good)
	v3, err := reg.ReloadKey(ctx, k)
	if err != nil || v3 == v2 {
		t.Fatalf("ReloadKey = %d, %v; want a new version", v3, err)
	}
	if v4, err := reg.ReloadKey(ctx, k); err != nil || v4 != v3 {
		t.Fatalf("ReloadKey of an unchanged key = %d, %v; want %d", v4, err, v3)
	}
}

func TestSecretKeyNeverPrintsTheKey(t *testing.T) {
	const key = "s3cr3t-key-value"
	sec := &secrets{}
	ref := tenant.SecretRef{Namespace: "ns", Name: "s", Key: "api-key"}
	sec.set(ref, key)
	_, url := serveSim(t, key)
	reg := tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: sec.read, URLPolicy: loopbackHTTP})
	tn, err := reg.Ensure(tenant.ClusterKey("prod"), tenant.Config{URL: url, ResyncInterval: time.Minute, Secret: ref})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.API().ListUsers(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	sk := tenant.NewSecretKey(ref, sec.read, nil)
	if got, err := sk.Key(); err != nil || got != key {
		t.Fatalf("Key() = %v; want the Secret's key", err)
	}
	var b strings.Builder
	logger := slog.New(slog.NewTextHandler(&b, nil))
	logger.Info("x", "tenant", tn, "key", sk)
	out := fmt.Sprintf("%v %+v %#v %s", tn, tn, sk, sk) + b.String()
	if strings.Contains(out, key) {
		t.Errorf("the key was printed: %s", out)
	}
}

func TestRegistryEnsure(t *testing.T) {
	sec := &secrets{}
	refA := tenant.SecretRef{Namespace: "a", Name: "s", Key: "api-key"}
	refB := tenant.SecretRef{Namespace: "b", Name: "s", Key: "api-key"}
	reg := tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: sec.read, QPS: 7, Burst: 9})
	cfg := tenant.Config{URL: "https://public-api.cipherscale.com/qa", ResyncInterval: time.Minute, Secret: refA}

	a1, err := reg.Ensure(tenant.ClusterKey("a"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := reg.Ensure(tenant.ClusterKey("a"), cfg)
	if a1 != a2 {
		t.Error("an unchanged configuration must keep the tenant (and its snapshot)")
	}
	cfg.QPS, cfg.Burst = 7, 9
	if a3, _ := reg.Ensure(tenant.ClusterKey("a"), cfg); a3 != a1 {
		t.Error("the registry's default rate limit, spelled out, is the same configuration")
	}
	cfg.ResyncInterval, cfg.FullResyncInterval = 20*time.Second, 2*time.Hour
	if a5, _ := reg.Ensure(tenant.ClusterKey("a"), cfg); a5 != a1 || a1.ResyncInterval() != 20*time.Second {
		t.Errorf("new intervals alone must keep the tenant (and its snapshot), and take effect: resync %s", a1.ResyncInterval())
	}
	cfg.QPS = 20
	a4, _ := reg.Ensure(tenant.ClusterKey("a"), cfg)
	if a4 == a1 {
		t.Error("a new rate limit must make a new client")
	}
	b, _ := reg.Ensure(tenant.NamespacedKey("b", "a"), tenant.Config{URL: cfg.URL, ResyncInterval: time.Minute, Secret: refB})
	if b == a4 || b.API() == a4.API() {
		t.Error("two tenants share a client")
	}
	if _, err := reg.Ensure(tenant.ClusterKey("c"), tenant.Config{URL: "http://example.com", Secret: refA}); err == nil {
		t.Error("a plain-http URL on a remote host was accepted")
	}
	if _, err := reg.Ensure(tenant.ClusterKey("d"), tenant.Config{URL: "https://169.254.169.254/", Secret: refA}); err == nil {
		t.Error("a URL outside the operator's hosts was accepted")
	}
	reg.Remove(tenant.ClusterKey("a"))
	if _, ok := reg.Get(tenant.ClusterKey("a")); ok {
		t.Error("a removed tenant is still there")
	}
}

// TestTenantsAreIsolated: one tenant's 429 pause does not slow another.
func TestTenantsAreIsolated(t *testing.T) {
	const key = "iso-key-5b2c"
	_, urlA := serveSim(t, key)
	simB, urlB := serveSim(t, key)
	simB.SetFaults([]simulator.FaultRule{{Status: 429, RetryAfterSeconds: 30}})
	sec := &secrets{}
	ref := tenant.SecretRef{Namespace: "ns", Name: "s", Key: "api-key"}
	sec.set(ref, key)
	reg := tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: sec.read, MaxRetries: 1, RetryBudget: time.Minute, URLPolicy: loopbackHTTP})
	a, err := reg.Ensure(tenant.ClusterKey("a"), tenant.Config{URL: urlA, ResyncInterval: time.Minute, Secret: ref})
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Ensure(tenant.ClusterKey("b"), tenant.Config{URL: urlB, ResyncInterval: time.Minute, Secret: ref})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bDone := make(chan error, 1)
	go func() { _, err := b.API().ListUsers(bctx); bDone <- err }()
	// B is now paused for 30s by its 429; A is not.
	for !hasRequest(simB) {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	for range 10 {
		if _, err := a.API().ListUsers(ctx); err != nil {
			t.Fatalf("tenant A: %v", err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("10 reads of tenant A took %s while tenant B was rate limited", d)
	}
	select {
	case err := <-bDone:
		t.Fatalf("tenant B's read returned during its 30s pause: %v", err)
	default:
	}
}

func hasRequest(s *simulator.Server) bool { return s.Stats().Total > 0 }
