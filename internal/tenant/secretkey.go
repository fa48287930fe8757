package tenant

// A tenant's API key, read from its Secret: kept in memory for a while, read again after a 401,
// never in a log or an error.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// expireOn401 passes the client's metrics on and makes the key source read its Secret again
// after a 401, so that a rotated key is picked up by the next call.
type expireOn401 struct {
	next cipherscale.Observer
	key  *SecretKey
}

func (o expireOn401) ObserveRequest(route string, status int, d time.Duration) {
	if status == http.StatusUnauthorized {
		o.key.Expire()
	}
	if o.next != nil {
		o.next.ObserveRequest(route, status, d)
	}
}

func (o expireOn401) ObserveRateLimitWait(d time.Duration) {
	if o.next != nil {
		o.next.ObserveRateLimitWait(d)
	}
}

func (o expireOn401) ObserveThrottled(route string, retryAfter time.Duration) {
	if o.next != nil {
		o.next.ObserveThrottled(route, retryAfter)
	}
}

// SecretKey is a cipherscale.KeySource that reads the API key from a Secret: at the first
// call, again when the key is older than its maximum age, after a 401 (Expire), and whenever
// Reload is called. It never prints the key.
type SecretKey struct {
	ref    SecretRef
	read   ReadSecretFunc
	now    func() time.Time
	maxAge time.Duration

	mu      sync.Mutex
	key     string
	err     error
	valid   bool      // key was read successfully and the Secret has not been found invalid since
	readAt  time.Time // of the last successful read
	triedAt time.Time // of the last read, successful or not
	stale   bool      // read again at the next call: a 401 or a transient read error
	version uint64
	// lastGood is the last key read successfully; draining uses it when the Secret is gone.
	lastGood string
	draining bool
}

var _ cipherscale.KeySource = (*SecretKey)(nil)

// NewSecretKey returns a key source over the Secret key ref, read with read. now is the clock
// (time.Now when nil). The Secret is read at the first call.
func NewSecretKey(ref SecretRef, read ReadSecretFunc, now func() time.Time) *SecretKey {
	if now == nil {
		now = time.Now
	}
	return &SecretKey{ref: ref, read: read, now: now, maxAge: keyMaxAge}
}

// Key returns the key, reading the Secret again when the key is stale.
func (k *SecretKey) Key() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	due := !k.valid || k.stale || now.Sub(k.readAt) >= k.maxAge
	if due && (k.triedAt.IsZero() || now.Sub(k.triedAt) >= keyRereadInterval) {
		ctx, cancel := context.WithTimeout(context.Background(), keyReadTimeout)
		defer cancel()
		k.readLocked(ctx, now)
	}
	if k.err != nil {
		if k.draining && k.lastGood != "" {
			return k.lastGood, nil
		}
		return "", k.err
	}
	return k.key, nil
}

// Reload reads the Secret now and returns the key's version and the read's error.
func (k *SecretKey) Reload(ctx context.Context) (uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.readLocked(ctx, k.now())
	return k.version, k.err
}

// readLocked reads the Secret. A Secret that must be fixed clears the key; a transient error
// keeps the last good key (an API server blip must not stop the tenant) and is retried at the
// next call. The version changes when the key does.
func (k *SecretKey) readLocked(ctx context.Context, now time.Time) {
	k.triedAt = now
	v, err := k.read(ctx, k.ref)
	if err == nil && v == "" {
		err = fmt.Errorf("%w: %s is empty", ErrInvalidSecret, k.ref)
	}
	switch {
	case err == nil:
		if !k.valid || v != k.key {
			k.version++
		}
		k.key, k.err, k.valid, k.lastGood = v, nil, true, v
		k.readAt, k.stale = now, false
	case errors.Is(err, ErrInvalidSecret):
		if k.valid {
			k.version++
		}
		k.key, k.err, k.valid = "", err, false
	default:
		if !k.valid {
			k.err = err
		}
		k.stale = true
	}
}

// Expire makes the next call read the Secret again (at most once per keyRereadInterval).
func (k *SecretKey) Expire() {
	k.mu.Lock()
	k.stale = true
	k.mu.Unlock()
}

// String names the Secret, never the key.
func (k *SecretKey) String() string { return "SecretKey(" + k.ref.String() + ")" }

// GoString hides the key from %#v.
func (k *SecretKey) GoString() string { return k.String() }

// Format hides the key from every fmt verb.
func (k *SecretKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue hides the key from log/slog.
func (k *SecretKey) LogValue() slog.Value { return slog.StringValue(k.String()) }
