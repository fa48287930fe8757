package cipherscale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	DefaultQPS         = 10
	DefaultBurst       = 20
	DefaultMaxRetries  = 4
	DefaultRetryBudget = 30 * time.Second
	DefaultTimeout     = 30 * time.Second
	DefaultUserAgent   = "cipherscale-operator"
)

// Tuning of the retry loop. Kept here, in one place, as the contract page asks.
const (
	backoffBase = 200 * time.Millisecond
	backoffCap  = 5 * time.Second
	// defaultRetryAfter is the pause after a 429 that named no Retry-After.
	defaultRetryAfter = time.Second
	// maxRetryAfter bounds the pause a single response can impose, so that a bogus header
	// cannot stop the client for days.
	maxRetryAfter = 10 * time.Minute
	// maxResponseBytes bounds the body of a successful answer: a page of 100 users, each with
	// its roles, groups and devices, is well under it. maxErrorBodyBytes bounds an error's body.
	maxResponseBytes  = 4 << 20
	maxErrorBodyBytes = 64 << 10
	// maxExcerpt is the longest excerpt of a non-JSON error body kept as a message.
	maxExcerpt = 160
)

// Observer receives the client's metrics. Its methods must be safe for concurrent use and fast.
type Observer interface {
	// ObserveRequest is called once per HTTP attempt. status is 0 when there was no HTTP answer;
	// route is one of the Route* templates.
	ObserveRequest(route string, status int, d time.Duration)
	// ObserveRateLimitWait is called once per attempt with the time it waited for a token of
	// the client's rate limiter and for a pause imposed by a 429.
	ObserveRateLimitWait(d time.Duration)
	// ObserveThrottled is called for every 429 received, with the pause it imposed.
	ObserveThrottled(route string, retryAfter time.Duration)
}

// Config configures a Client. The zero value of every field but Key selects its default.
type Config struct {
	// BaseURL is the absolute http(s) URL the routes are relative to; DefaultBaseURL when empty.
	// https is required unless the host is loopback or AllowInsecureHTTP is set.
	BaseURL string
	// AllowInsecureHTTP allows a plain http BaseURL on a non-loopback host.
	AllowInsecureHTTP bool
	// Policy, when set, is the operator's rule over BaseURL (URLPolicy.Validate); it replaces
	// AllowInsecureHTTP and the loopback exception. The operator sets it for every tenant object.
	Policy *URLPolicy
	// Key supplies the API key for every request. Required.
	Key KeySource
	// HTTPClient sends the requests. The default has a 30s timeout and keeps connections alive.
	// The client never follows redirects (a redirect would carry the key to another place): a
	// 3xx answer is an *APIError. A given client is copied, not modified.
	HTTPClient *http.Client
	// QPS is the rate of the token bucket shared by every call of the Client; DefaultQPS when
	// 0, unlimited when +Inf. Negative is invalid.
	QPS float64
	// Burst is the size of that bucket; DefaultBurst when 0. Negative is invalid.
	Burst int
	// MaxRetries is how many times a call is retried after a 429, or after a 5xx or a failure
	// with no answer when the call is idempotent; DefaultMaxRetries when 0, no retry when negative.
	MaxRetries int
	// RetryBudget is the total time one call may spend retrying and backing off;
	// DefaultRetryBudget when 0. Negative is invalid.
	RetryBudget time.Duration
	// UserAgent is sent with every request; DefaultUserAgent when empty.
	UserAgent string
	// Observer receives metrics; optional.
	Observer Observer
	// MaxListUsers is the most users ListUsers reads before it gives up with ErrListTooLarge;
	// DefaultMaxListUsers when 0. It also caps the pages of a list at MaxListUsers/10 (pages of
	// 10 users on average). Negative is invalid.
	MaxListUsers int
	// MaxListMemory is the most memory, estimated, that the users read by one ListUsers may take
	// before it gives up with ErrListTooLarge; DefaultMaxListMemory when 0. Negative is invalid.
	MaxListMemory int64
}

// Client is the HTTP client of the Cipherscale Users API. It is safe for concurrent use; all its
// calls share one rate limiter and one 429 pause, as the API limits a key, not a caller.
// It writes no logs.
type Client struct {
	base       string // absolute, no trailing slash
	key        KeySource
	hc         *http.Client
	limiter    *rate.Limiter
	maxRetries int
	budget     time.Duration
	userAgent  string
	obs        Observer
	maxUsers   int
	maxMemory  int64

	mu          sync.Mutex
	pausedUntil time.Time
	// throttledSince is when the API began answering 429 to every call of this client: the
	// first 429 after any other answer. Zero while the API answers.
	throttledSince time.Time
}

var _ API = (*Client)(nil)

// New validates cfg and returns a Client. Its errors never contain the key.
func New(cfg Config) (*Client, error) {
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	var base *url.URL
	var err error
	if cfg.Policy != nil {
		base, err = cfg.Policy.Validate(raw)
	} else {
		base, err = ValidateBaseURL(raw, cfg.AllowInsecureHTTP)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Key == nil {
		return nil, errors.New("cipherscale: config: an API key source is required")
	}
	qps := cfg.QPS
	switch {
	case math.IsNaN(qps) || qps < 0:
		return nil, fmt.Errorf("cipherscale: config: QPS must be positive, got %v", qps)
	case qps == 0:
		qps = DefaultQPS
	}
	burst := cfg.Burst
	switch {
	case burst < 0:
		return nil, fmt.Errorf("cipherscale: config: Burst must be positive, got %d", burst)
	case burst == 0:
		burst = DefaultBurst
	}
	limit := rate.Limit(qps)
	if math.IsInf(qps, 1) {
		limit = rate.Inf
	}
	retries := cfg.MaxRetries
	switch {
	case retries < 0:
		retries = 0
	case retries == 0:
		retries = DefaultMaxRetries
	}
	budget := cfg.RetryBudget
	switch {
	case budget < 0:
		return nil, fmt.Errorf("cipherscale: config: RetryBudget must be positive, got %s", budget)
	case budget == 0:
		budget = DefaultRetryBudget
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	if strings.ContainsFunc(ua, isCTL) {
		return nil, errors.New("cipherscale: config: UserAgent contains control characters")
	}
	maxUsers := cfg.MaxListUsers
	switch {
	case maxUsers < 0:
		return nil, fmt.Errorf("cipherscale: config: MaxListUsers must be positive, got %d", maxUsers)
	case maxUsers == 0:
		maxUsers = DefaultMaxListUsers
	}
	maxMemory := cfg.MaxListMemory
	switch {
	case maxMemory < 0:
		return nil, fmt.Errorf("cipherscale: config: MaxListMemory must be positive, got %d", maxMemory)
	case maxMemory == 0:
		maxMemory = DefaultMaxListMemory
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc = http.Client{Timeout: DefaultTimeout, Transport: defaultTransport()}
	}
	hc.CheckRedirect = noRedirects
	return &Client{
		base:       strings.TrimRight(base.String(), "/"),
		key:        cfg.Key,
		hc:         &hc,
		limiter:    rate.NewLimiter(limit, burst),
		maxRetries: retries,
		budget:     budget,
		userAgent:  ua,
		obs:        cfg.Observer,
		maxUsers:   maxUsers,
		maxMemory:  maxMemory,
	}, nil
}

func defaultTransport() *http.Transport {
	t, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		t = t.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	t.MaxIdleConns = 100
	t.MaxIdleConnsPerHost = 32
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = time.Second
	return t
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// BaseURL returns the base URL the client sends to, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// RateLimit returns the client's rate limit: requests per second and burst.
func (c *Client) RateLimit() (float64, int) { return float64(c.limiter.Limit()), c.limiter.Burst() }

// String names the client by its base URL; it never shows the key.
func (c *Client) String() string { return "cipherscale.Client(" + c.base + ")" }

// call describes one API call.
type call struct {
	method string
	route  string // one of the Route* templates
	path   string // escaped, relative to the base URL
	query  url.Values
	body   []byte // nil when the request has none
	// idempotent calls are retried after a 5xx or a failure with no answer. Every call is
	// retried after a 429, which is a refusal.
	idempotent bool
	// decode, when set, reads a 2xx body as a stream (at most maxResponseBytes of it) instead of
	// the body being read into memory; its error is a malformed response.
	decode func(io.Reader) error
}

// response is a complete HTTP answer with a 2xx status.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends c, waiting for the rate limiter and any 429 pause, and retries as the call allows,
// within MaxRetries and RetryBudget. It returns a 2xx response, or an *APIError,
// *TransportError or an error of ctx.
func (c *Client) do(ctx context.Context, cl call) (*response, error) {
	deadline := time.Now().Add(c.budget)
	for attempt := 0; ; attempt++ {
		if err := c.waitTurn(ctx, cl, deadline); err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, cl)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		var wait time.Duration
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			// A refusal: safe to retry for every call, once the shared pause is over.
			wait = ae.RetryAfter
		case errors.As(err, &ae) && ae.Status >= 500 && cl.idempotent:
			wait = max(backoff(attempt), ae.RetryAfter)
		case IsTransport(err) && cl.idempotent:
			wait = backoff(attempt)
		default:
			return nil, err
		}
		if attempt >= c.maxRetries || time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		if ae != nil && ae.Status == http.StatusTooManyRequests {
			if noPauseWait(ctx) {
				return nil, err
			}
			continue // waitTurn waits for the pause
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, fmt.Errorf("cipherscale API %s: %w", cl.route, err)
		}
	}
}

// send makes one HTTP attempt.
func (c *Client) send(ctx context.Context, cl call) (*response, error) {
	key, err := c.key.Key()
	if err != nil {
		return nil, fmt.Errorf("cipherscale API %s: reading the API key: %w", cl.route, err)
	}
	if key == "" || strings.ContainsFunc(key, isCTL) {
		return nil, fmt.Errorf("cipherscale API %s: the API key is empty or contains control characters", cl.route)
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("cipherscale API %s: building the request: %v", cl.route, scrub(stripURL(err), key))
	}
	req.Header.Set("apikey", key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.observe(cl.route, 0, time.Since(start))
		return nil, &TransportError{Method: cl.method, Route: cl.route, Err: scrubErr(stripURLErr(err), key)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		c.answered()
	}
	success := resp.StatusCode >= 200 && resp.StatusCode < 300
	if success && cl.decode != nil {
		return c.decodeStream(cl, resp, start, key)
	}
	limit := int64(maxErrorBodyBytes)
	if success {
		limit = maxResponseBytes
	}
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.observe(cl.route, resp.StatusCode, time.Since(start))
	if success {
		if readErr != nil {
			// The service answered 2xx, but the body was cut: what it did is unknown.
			return nil, &TransportError{Method: cl.method, Route: cl.route,
				Err: scrubErr(fmt.Errorf("reading the response: %w", stripURLErr(readErr)), key)}
		}
		if int64(len(data)) > limit {
			return nil, &DecodeError{Method: cl.method, Route: cl.route,
				Err: fmt.Errorf("response larger than %d bytes", limit)}
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
	}
	if int64(len(data)) > limit {
		data = data[:limit]
	}
	// Drain a little of what is left so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	ae := parseAPIError(cl, resp, data, key)
	if ae.Status == http.StatusTooManyRequests {
		if ae.RetryAfter <= 0 {
			ae.RetryAfter = defaultRetryAfter
		}
		ae.ThrottledFor = c.pause(ae.RetryAfter)
		if c.obs != nil {
			c.obs.ObserveThrottled(cl.route, ae.RetryAfter)
		}
	}
	return nil, ae
}

func (c *Client) observe(route string, status int, d time.Duration) {
	if c.obs != nil {
		c.obs.ObserveRequest(route, status, d)
	}
}
