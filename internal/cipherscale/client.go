package cipherscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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

// decodeStream hands a 2xx body to cl.decode through a reader that stops at maxResponseBytes,
// and sorts its failure: a body cut by the network is a *TransportError, a body past the limit or
// one cl.decode refuses a *DecodeError.
func (c *Client) decodeStream(cl call, resp *http.Response, start time.Time, key string) (*response, error) {
	body := &cappedReader{r: resp.Body, left: maxResponseBytes}
	err := cl.decode(body)
	c.observe(cl.route, resp.StatusCode, time.Since(start))
	switch {
	case body.over:
		return nil, &DecodeError{Method: cl.method, Route: cl.route,
			Err: fmt.Errorf("response larger than %d bytes", int64(maxResponseBytes))}
	case body.readErr != nil:
		return nil, &TransportError{Method: cl.method, Route: cl.route,
			Err: scrubErr(fmt.Errorf("reading the response: %w", stripURLErr(body.readErr)), key)}
	case err != nil:
		return nil, &DecodeError{Method: cl.method, Route: cl.route, Err: scrubErr(err, key)}
	}
	return &response{status: resp.StatusCode, header: resp.Header}, nil
}

// cappedReader reads at most left bytes of r; past them it fails and records that it did. It
// records a failure of r itself apart, so that a cut connection is not taken for bad data.
type cappedReader struct {
	r       io.Reader
	left    int64
	over    bool
	readErr error
}

var errTooLarge = errors.New("response too large")

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
			return 0, errTooLarge
		}
		if err != nil && !errors.Is(err, io.EOF) {
			c.readErr = err
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.readErr = err
	}
	return n, err
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

// ValidateBaseURL parses raw as the base URL of the API: absolute, http or https, with a host,
// without credentials, query or fragment. Plain http is refused unless the host is loopback
// (127.0.0.0/8, ::1, localhost) or allowInsecure is set. The result has no trailing slash.
func ValidateBaseURL(raw string, allowInsecure bool) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("cipherscale: base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may hold credentials: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cipherscale: invalid base URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, errors.New("cipherscale: invalid base URL: the scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("cipherscale: invalid base URL: it must be absolute, with a host")
	}
	if u.User != nil {
		return nil, errors.New("cipherscale: invalid base URL: credentials are not allowed in it (use the API key)")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("cipherscale: invalid base URL: a query or fragment is not allowed")
	}
	if u.Opaque != "" {
		return nil, errors.New("cipherscale: invalid base URL: it must be of the form scheme://host/path")
	}
	if scheme == "http" && !allowInsecure && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("cipherscale: invalid base URL: https is required for host %s "+
			"(plain http is allowed only for loopback hosts or with AllowInsecureHTTP)", u.Hostname())
	}
	u.Scheme = scheme
	u.Path = strings.TrimRight(u.Path, "/")
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/")
	}
	return u, nil
}

func isLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

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

// waitTurn waits until no 429 pause is in force and a token of the limiter is available.
// A pause longer than what is left of the call's budget is not waited for: the call fails at
// once with a 429 *APIError whose RetryAfter says when to come back.
func (c *Client) waitTurn(ctx context.Context, cl call, deadline time.Time) error {
	start := time.Now()
	defer func() {
		if c.obs != nil {
			c.obs.ObserveRateLimitWait(time.Since(start))
		}
	}()
	if err := c.waitPause(ctx, cl, deadline); err != nil {
		return err
	}
	if err := c.limiter.Wait(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		} else {
			// The wait would outlast the ctx's deadline: report it as the deadline it is.
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		return fmt.Errorf("cipherscale API %s: waiting for the rate limiter: %w", cl.route, err)
	}
	// A 429 may have arrived while this call waited for its token.
	return c.waitPause(ctx, cl, deadline)
}

func (c *Client) waitPause(ctx context.Context, cl call, deadline time.Time) error {
	for {
		c.mu.Lock()
		until := c.pausedUntil
		c.mu.Unlock()
		now := time.Now()
		if !now.Before(until) {
			return nil
		}
		if until.After(deadline) || noPauseWait(ctx) {
			return &APIError{
				Status:     http.StatusTooManyRequests,
				Method:     cl.method,
				Route:      cl.route,
				Message:    "rate limited: calls are paused after an earlier 429",
				RetryAfter: until.Sub(now),
				// The storm so far, so that the caller's wait can grow with it.
				ThrottledFor: c.throttledFor(now),
			}
		}
		if err := sleepCtx(ctx, until.Sub(now)); err != nil {
			return fmt.Errorf("cipherscale API %s: waiting out a 429: %w", cl.route, err)
		}
	}
}

type noPauseWaitKey struct{}

// WithoutPauseWait returns a ctx whose calls neither wait out a 429 pause nor retry a 429: they
// fail at once with a 429 *APIError whose RetryAfter says when to come back. A controller
// uses it so that a throttled tenant gives its workers back, to requeue the object after the
// pause, instead of holding them while other tenants' objects wait.
func WithoutPauseWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noPauseWaitKey{}, true)
}

func noPauseWait(ctx context.Context) bool {
	v, _ := ctx.Value(noPauseWaitKey{}).(bool)
	return v
}

// pause makes every call of the client wait until d from now, and returns how long the API has
// been answering 429 (the storm so far, counted from its first 429).
func (c *Client) pause(d time.Duration) time.Duration {
	now := time.Now()
	until := now.Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
	if c.throttledSince.IsZero() {
		c.throttledSince = now
	}
	return now.Sub(c.throttledSince)
}

// answered ends a 429 storm: the API gave an answer other than 429.
func (c *Client) answered() {
	c.mu.Lock()
	c.throttledSince = time.Time{}
	c.mu.Unlock()
}

// throttledFor is how long the API has been answering 429 at now, 0 when it is not.
func (c *Client) throttledFor(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.throttledSince.IsZero() {
		return 0
	}
	return now.Sub(c.throttledSince)
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

// parseAPIError maps a non-2xx answer to an *APIError.
func parseAPIError(cl call, resp *http.Response, body []byte, key string) *APIError {
	ae := &APIError{
		Status:     resp.StatusCode,
		Method:     cl.method,
		Route:      cl.route,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var eb struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
		Code    json.RawMessage `json:"code"`
		Emails  json.RawMessage `json:"emails"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &eb) == nil {
		ae.Message = jsonText(eb.Message)
		if ae.Message == "" {
			ae.Message = jsonText(eb.Error)
		}
		ae.Code = jsonText(eb.Code)
		var emails []string
		if json.Unmarshal(eb.Emails, &emails) == nil {
			ae.Emails = emails
		} else if s := jsonText(eb.Emails); s != "" {
			ae.Emails = []string{s}
		}
	} else {
		ae.Message = excerpt(trimmed)
	}
	ae.Message = scrub(shorten(ae.Message, 4*maxExcerpt), key)
	ae.Code = scrub(shorten(ae.Code, maxExcerpt), key)
	return ae
}

// jsonText renders a JSON string, number or list of strings as text; anything else as "".
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, "; ")
	}
	return ""
}

// excerpt makes a short, printable message of a body that is not a JSON error. HTML pages (of a
// proxy, say) say nothing useful: the status text is used instead.
func excerpt(b []byte) string {
	if len(b) == 0 || b[0] == '<' || !utf8.Valid(b) {
		return ""
	}
	return shorten(string(b), maxExcerpt)
}

// shorten collapses whitespace, drops control characters and cuts s to n runes.
func shorten(s string, n int) string {
	var sb strings.Builder
	count := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
			count++
		}
		space = false
		if count >= n {
			sb.WriteString("...")
			break
		}
		sb.WriteRune(r)
		count++
	}
	return sb.String()
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date. It returns 0 when
// the header is absent or unreadable, and at most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(secs) || secs <= 0 {
			return 0
		}
		if secs > maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// backoff is the jittered exponential wait before retry number attempt+1: equal jitter over
// backoffBase * 2^attempt, capped at backoffCap.
func backoff(attempt int) time.Duration {
	d := backoffCap
	if attempt < 16 {
		d = min(backoffBase<<attempt, backoffCap)
	}
	half := d / 2
	return half + rand.N(half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stripURLErr drops the URL that a *url.Error repeats (it names the user's id) and keeps its
// cause, which errors.Is still sees (a context error, a timeout).
func stripURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		if ue.Timeout() {
			return &timeoutError{op: ue.Op, err: ue.Err}
		}
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

func stripURL(err error) string { return stripURLErr(err).Error() }

// timeoutError keeps the Timeout() of the *url.Error it replaces.
type timeoutError struct {
	op  string
	err error
}

func (e *timeoutError) Error() string { return strings.ToLower(e.op) + ": " + e.err.Error() }
func (e *timeoutError) Unwrap() error { return e.err }
func (e *timeoutError) Timeout() bool { return true }

// scrub removes the key from s, should the service or a library have repeated it.
func scrub(s, key string) string {
	if key == "" || !strings.Contains(s, key) {
		return s
	}
	return strings.ReplaceAll(s, key, "<redacted>")
}

// scrubErr is scrub for an error, which keeps its chain when the key is not in its text.
func scrubErr(err error, key string) error {
	if err == nil || key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return errors.New(scrub(err.Error(), key))
}

func isCTL(r rune) bool { return r < 0x20 || r == 0x7f }
