package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// Kinds of tenant objects, as a Key names them. They are the Kubernetes kinds' names; this
// package does not import the API types.
const (
	KindCluster    = "ClusterCipherscaleTenant"
	KindNamespaced = "CipherscaleTenant"
)

// Key identifies one tenant of the registry: a ClusterCipherscaleTenant (Kind and Name) or a
// CipherscaleTenant (Kind, Namespace and Name).
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// DefaultName is the name of the ClusterCipherscaleTenant that objects without a tenantRef use.
const DefaultName = "default"

// ClusterKey is the key of the ClusterCipherscaleTenant with this name.
func ClusterKey(name string) Key { return Key{Kind: KindCluster, Name: name} }

// NamespacedKey is the key of the CipherscaleTenant with this namespace and name.
func NamespacedKey(namespace, name string) Key {
	return Key{Kind: KindNamespaced, Namespace: namespace, Name: name}
}

// String is "ClusterCipherscaleTenant/<name>" or "CipherscaleTenant/<ns>/<name>": the value of
// the controllers' tenant index and of the metrics' tenant label.
func (k Key) String() string {
	if k.Kind == KindNamespaced {
		return k.Kind + "/" + k.Namespace + "/" + k.Name
	}
	return k.Kind + "/" + k.Name
}

// SecretRef says where a tenant's API key is: a key of a Secret, and the tenant that reads it
// (the Secret must consent to it: see controller.SecretReader).
type SecretRef struct {
	Namespace string
	Name      string
	Key       string
	// For is the tenant that reads the key.
	For Key
}

func (r SecretRef) String() string {
	return fmt.Sprintf("Secret %s/%s key %q", r.Namespace, r.Name, r.Key)
}

// ErrInvalidSecret is wrapped by the errors of a ReadSecretFunc when the Secret is missing,
// may not be read, or has no usable value at its key: a person must fix the Secret.
var ErrInvalidSecret = errors.New("invalid API key Secret")

// ReadSecretFunc returns the API key at ref. Its errors never contain the key. An error that
// wraps ErrInvalidSecret says the Secret must be fixed; any other is transient.
type ReadSecretFunc func(ctx context.Context, ref SecretRef) (string, error)

// Config is what a tenant object says about its tenant, after the operator's defaults.
type Config struct {
	// URL is the base URL of the tenant's API.
	URL string
	// QPS and Burst are the tenant's rate limit; zero takes the registry's.
	QPS   float64
	Burst int
	// ResyncInterval is how old the tenant's snapshot may be.
	ResyncInterval time.Duration
	// FullResyncInterval is how often the tenant is read whole (Options.FullResyncInterval).
	FullResyncInterval time.Duration
	// Secret is where the API key is.
	Secret SecretRef
}

// RegistryOptions configure a Registry: what every tenant's client shares.
type RegistryOptions struct {
	// ReadSecret reads an API key from a Secret. Required.
	ReadSecret ReadSecretFunc
	// URLPolicy is the operator's rule over the URLs tenant objects name (--api-hosts,
	// --allow-insecure-http); the zero value allows https to the vendor's host only. A URL outside
	// it makes Ensure fail: nothing is sent there.
	URLPolicy cipherscale.URLPolicy
	// Observer receives every tenant client's metrics; optional.
	Observer cipherscale.Observer
	// ObserverFor, when set, gives each tenant its own observer (the metrics' tenant label);
	// it replaces Observer.
	ObserverFor func(Key) cipherscale.Observer
	// UserAgent of every request; the client's default when empty.
	UserAgent string
	// HTTPClient sends the requests; the client's default when nil.
	HTTPClient *http.Client
	// MaxRetries and RetryBudget of every tenant's client; the client's defaults when zero.
	MaxRetries  int
	RetryBudget time.Duration
	// QPS and Burst are the rate limit of a tenant whose Config sets none; the client's
	// defaults when zero.
	QPS   float64
	Burst int
	// MaxListUsers and MaxListMemory bound one read of a tenant's users; the client's defaults
	// when zero.
	MaxListUsers  int
	MaxListMemory int64
	// BatchWindow of every tenant's create batcher.
	BatchWindow time.Duration
	// MaxPasses bounds the reconciles of one tenant's objects in progress at once, so that a
	// slow tenant holds at most that many workers; DefaultMaxPasses when zero.
	MaxPasses int
	// KeyMaxAge is how long a key read from a Secret is used before the Secret is read again;
	// keyMaxAge when zero. A 401 from the API makes the next call read it again at once.
	KeyMaxAge time.Duration
	// Decorate, when set, wraps each tenant's client (the dev environment adds to what a
	// tenant answers what its simulator cannot model).
	Decorate func(Key, cipherscale.API) cipherscale.API
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DefaultRemovalsPerHour is the removal budget of a tenant whose spec sets none (the CRD's
// default of spec.removalBudget.perHour).
const DefaultRemovalsPerHour = 25

// keyMaxAge is how long a key read from a Secret is used without reading the Secret again.
const keyMaxAge = time.Minute

// keyRereadInterval is the least time between two reads of one Secret, so that a storm of 401s
// does not become a storm of Secret reads.
const keyRereadInterval = time.Second

// keyReadTimeout bounds one read of a Secret made from within an API call.
const keyReadTimeout = 10 * time.Second

// Registry is the set of tenants the operator serves, each with its own client (its own rate
// limiter and 429 pause), snapshot and create batcher, so that one tenant's outage or 429 storm
// never slows another. It is safe for concurrent use.
type Registry struct {
	opts RegistryOptions

	mu      sync.RWMutex
	entries map[Key]*entry
	// budgets holds each tenant's removal budget, apart from its entry so that a tenant
	// reconfigured (a new client) keeps the removals of its last hour.
	budgets map[Key]*RemovalBudget
	// invitations holds each tenant's invitation log, apart from its entry for the same reason.
	invitations map[Key]*InvitationLog
	// onWaiting is told the key of a tenant whose number of waiting removals changed.
	onWaiting func(Key)
	// ready says which tenants are ready, for tenant objects whose status the operator may not
	// write (SetReady).
	ready map[Key]bool
}

type entry struct {
	tenant *Tenant
	config Config
	key    *SecretKey
}

// NewRegistry returns an empty registry.
func NewRegistry(opts RegistryOptions) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyMaxAge <= 0 {
		opts.KeyMaxAge = keyMaxAge
	}
	return &Registry{opts: opts, entries: map[Key]*entry{}}
}

// OnWaitingChange sets a function told the key of a tenant whose number of waiting removals
// changed (a removal started or stopped waiting), for every budget made from now on and those
// made already. It is called often during a mass removal: it should be cheap and coalesce.
func (r *Registry) OnWaitingChange(f func(Key)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onWaiting = f
	for k, b := range r.budgets {
		r.watchBudget(k, b)
	}
}

// watchBudget passes the budget's waiting changes to onWaiting; r.mu is held.
func (r *Registry) watchBudget(k Key, b *RemovalBudget) {
	if f := r.onWaiting; f != nil {
		b.OnWaitingChange(func() { f(k) })
	}
}

// Get returns the tenant with this key, if the registry has it.
func (r *Registry) Get(k Key) (*Tenant, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[k]
	if !ok {
		return nil, false
	}
	return e.tenant, true
}

// Keys returns the keys of every tenant, sorted by their String.
func (r *Registry) Keys() []Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Key, 0, len(r.entries))
	for k := range r.entries {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Ensure returns the tenant with this key, configured by cfg. A tenant whose connection (URL,
// rate, Secret) changed is replaced by a new one (new client, empty snapshot); one whose
// intervals alone changed takes them in place, and is returned, as an unchanged one is, with
// its snapshot and its key. The key is not read here: see ReloadKey.
func (r *Registry) Ensure(k Key, cfg Config) (*Tenant, error) {
	if r.opts.ReadSecret == nil {
		return nil, errors.New("the registry has no ReadSecret function")
	}
	if cfg.QPS == 0 {
		cfg.QPS = r.opts.QPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = r.opts.Burst
	}
	r.mu.Lock()
	e, ok := r.entries[k]
	if ok && SameConnection(e.config, cfg) {
		// Only how often it is read changed (or nothing): the tenant keeps its snapshot.
		e.config = cfg
		e.tenant.SetIntervals(cfg.ResyncInterval, cfg.FullResyncInterval)
		r.mu.Unlock()
		return e.tenant, nil
	}
	r.mu.Unlock()

	key := NewSecretKey(cfg.Secret, r.opts.ReadSecret, r.opts.Now)
	key.maxAge = r.opts.KeyMaxAge
	api, err := cipherscale.New(cipherscale.Config{
		BaseURL:       cfg.URL,
		Policy:        &r.opts.URLPolicy,
		Key:           key,
		HTTPClient:    r.opts.HTTPClient,
		QPS:           cfg.QPS,
		Burst:         cfg.Burst,
		MaxRetries:    r.opts.MaxRetries,
		RetryBudget:   r.opts.RetryBudget,
		UserAgent:     r.opts.UserAgent,
		MaxListUsers:  r.opts.MaxListUsers,
		MaxListMemory: r.opts.MaxListMemory,
		Observer:      expireOn401{next: r.observer(k), key: key},
	})
	if err != nil {
		return nil, fmt.Errorf("configuring the client of tenant %s: %w", k, err)
	}
	var client cipherscale.API = api
	if r.opts.Decorate != nil {
		client = r.opts.Decorate(k, api)
	}
	// The budget outlives the entry: a reconfigured tenant keeps the removals of its hour.
	passes := r.opts.MaxPasses
	if passes <= 0 {
		passes = DefaultMaxPasses
	}
	t := New(client, Options{MaxAge: cfg.ResyncInterval, FullResyncInterval: cfg.FullResyncInterval, BatchWindow: r.opts.BatchWindow, MaxPasses: passes, Now: r.opts.Now, RemovalBudget: r.Budget(k), Key: key, Invitations: r.Invitations(k)})

	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[k]; ok && e.config == cfg { // another caller won the race
		return e.tenant, nil
	}
	r.entries[k] = &entry{tenant: t, config: cfg, key: key}
	return t, nil
}

// observer returns the metrics observer of the tenant with this key.
func (r *Registry) observer(k Key) cipherscale.Observer {
	if r.opts.ObserverFor != nil {
		return r.opts.ObserverFor(k)
	}
	return r.opts.Observer
}

// ReloadKey reads the tenant's Secret now, so that a rotated key is used from the next call
// on. It returns an error wrapping ErrInvalidSecret when the Secret must be fixed, and the
// version of the key: a number that changes each time the key read differs from the last.
func (r *Registry) ReloadKey(ctx context.Context, k Key) (uint64, error) {
	r.mu.RLock()
	e, ok := r.entries[k]
	r.mu.RUnlock()
	if !ok {
		return 0, fmt.Errorf("tenant %s is not in the registry", k)
	}
	return e.key.Reload(ctx)
}

// Drain keeps the tenant's last good key in use when its Secret goes: the tenant object is
// being deleted, and the finalizers of the objects that use it still have to reach the tenant
// (a namespace deleted with its tenant, Secret and users at once, in any order). A tenant not
// in the registry is ignored.
func (r *Registry) Drain(k Key) {
	r.mu.RLock()
	e, ok := r.entries[k]
	r.mu.RUnlock()
	if ok {
		e.key.mu.Lock()
		e.key.draining = true
		e.key.mu.Unlock()
	}
}

// SetReady records whether the tenant of k is ready (its key works), for a tenant object whose
// status the operator may not write.
func (r *Registry) SetReady(k Key, ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ready == nil {
		r.ready = map[Key]bool{}
	}
	r.ready[k] = ready
}

// Ready reports what SetReady last recorded for the tenant of k; false when nothing was.
func (r *Registry) Ready(k Key) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ready[k]
}

// KeyAvailable reports whether the tenant's calls have a key: its Secret reads, or it is
// draining with the last key read by this process. False for a tenant not in the registry.
func (r *Registry) KeyAvailable(k Key) bool {
	r.mu.RLock()
	e, ok := r.entries[k]
	r.mu.RUnlock()
	if !ok {
		return false
	}
	if e.key == nil {
		return true // the default tenant's key comes from the flags
	}
	_, err := e.key.Key()
	return err == nil
}

// Remove forgets the tenant with this key. Calls in flight finish; new lookups miss.
func (r *Registry) Remove(k Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, k)
	delete(r.budgets, k)
	delete(r.ready, k)
	// The invitations of the last 24 hours are kept while there are some: deleting and
	// re-creating the tenant object does not reset the cap.
	if l, ok := r.invitations[k]; ok && len(l.Record()) == 0 {
		delete(r.invitations, k)
	}
}

// Invitations returns the invitation log of the tenant with this key, made on first use without
// a cap (the tenant's reconciler sets it with SetLimit). The log of a tenant object is made
// expecting a restore: its sends wait until its reconciler restored the last 24 hours from the
// object's status.
func (r *Registry) Invitations(k Key) *InvitationLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.invitations[k]; ok {
		return l
	}
	if r.invitations == nil {
		r.invitations = map[Key]*InvitationLog{}
	}
	l := NewInvitationLog(k.String(), 0, r.opts.Now)
	l.ExpectRestore()
	r.invitations[k] = l
	return l
}

// Budget returns the removal budget of the tenant with this key, made on first use with
// DefaultRemovalsPerHour units per hour (the tenant's reconciler sets the spec's with
// SetPerHour). It is made expecting a restore: its removals wait until the tenant's reconciler
// restored the last hour from the object's status (RemovalBudget.Restore).
func (r *Registry) Budget(k Key) *RemovalBudget {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.budgets[k]; ok {
		return b
	}
	if r.budgets == nil {
		r.budgets = map[Key]*RemovalBudget{}
	}
	b := NewRemovalBudget(DefaultRemovalsPerHour, r.opts.Now)
	b.ExpectRestore()
	r.watchBudget(k, b)
	r.budgets[k] = b
	return b
}

// SameConnection reports whether two configurations differ at most in how often the tenant is
// read (ResyncInterval, FullResyncInterval).
func SameConnection(a, b Config) bool {
	a.ResyncInterval, a.FullResyncInterval = 0, 0
	b.ResyncInterval, b.FullResyncInterval = 0, 0
	return a == b
}
