package simulator

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// RouteUnmatched is the route under which Stats counts requests that matched no API route.
const RouteUnmatched = "unmatched"

// maxBody bounds the request bodies the simulator reads.
const maxBody = 4 << 20

// Server is a simulated Cipherscale tenant. It serves the Users API under /tenants/ and its control
// surface under /_sim/. It is safe for concurrent use and logs nothing.
type Server struct {
	apiKey string

	mu      sync.Mutex
	t       *tenant
	faults  []*faultState
	limiter *rate.Limiter
	stats   map[statKey]int
	total   int
	hook    func(route string, r *http.Request)
}

// SetHook makes fn run before every authorized API request is handled, with its route template,
// outside the simulator's lock, so that fn may change the tenant (delete or add users between
// two pages of a list, say). nil removes it. Go tests only: the control surface has no such call.
func (s *Server) SetHook(fn func(route string, r *http.Request)) {
	s.mu.Lock()
	s.hook = fn
	s.mu.Unlock()
}

// New returns a simulator of an empty tenant that accepts the given API key. With an empty key,
// every API request is refused with 401.
func New(apiKey string) *Server {
	return &Server{apiKey: apiKey, t: newTenant(), stats: map[statKey]int{}}
}

// Reset empties the tenant and removes every fault rule, the rate limit and the statistics. The
// API key is kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t = newTenant()
	s.faults = nil
	s.limiter = nil
	s.stats = map[statKey]int{}
	s.total = 0
}

// Start listens on addr (such as "127.0.0.1:0") and serves the simulator until stop is called. It
// returns the base URL, such as "http://127.0.0.1:41234".
func (s *Server) Start(addr string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
			<-done
		})
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// response is what a handler decided: a status, an optional JSON body, optional headers.
type response struct {
	status int
	body   any    // nil: no body
	raw    []byte // an encoded JSON body, used instead of body when set
	header map[string]string
}

func errResponse(err error) response {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = newErr(http.StatusInternalServerError, "%v", err)
	}
	return response{status: ae.status, body: cipherscale.ErrorBody{Message: ae.msg, Code: ae.code, Emails: ae.emails}}
}

func errorf(status int, format string, args ...any) response {
	return errResponse(newErr(status, format, args...))
}

func write(w http.ResponseWriter, resp response) {
	for k, v := range resp.header {
		w.Header().Set(k, v)
	}
	if resp.body == nil && resp.raw == nil {
		w.WriteHeader(resp.status)
		return
	}
	b := resp.raw
	if b == nil {
		var err error
		if b, err = json.Marshal(resp.body); err != nil {
			resp = errorf(http.StatusInternalServerError, "encoding the response: %v", err)
			b, _ = json.Marshal(resp.body)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(b)
}

// ServeHTTP serves the API under /tenants/ and the control surface under /_sim/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, "/_sim/") {
		write(w, s.serveControl(r))
		return
	}
	s.serveAPI(w, r)
}

// apiMatch is the outcome of routing an API request.
type apiMatch struct {
	route   string   // template, "" when unmatched
	allowed []string // methods the path accepts, when the path is known
	id      string
	groupID string
}

func matchAPI(method, path string) apiMatch {
	const base = "/tenants/users"
	var routes map[string]string
	var m apiMatch
	switch {
	case path == base:
		routes = map[string]string{http.MethodGet: cipherscale.RouteListUsers, http.MethodPost: cipherscale.RouteCreateUsers}
	case strings.HasPrefix(path, base+"/"):
		segs := strings.Split(path[len(base)+1:], "/")
		for _, seg := range segs {
			if seg == "" {
				return apiMatch{}
			}
		}
		m.id = segs[0]
		switch len(segs) {
		case 1:
			routes = map[string]string{
				http.MethodGet:    cipherscale.RouteGetUser,
				http.MethodPut:    cipherscale.RouteUpdateProfile,
				http.MethodDelete: cipherscale.RouteDeleteUser,
			}
		case 2:
			switch segs[1] {
			case "deactivate":
				routes = map[string]string{http.MethodPatch: cipherscale.RouteDeactivateUser}
			case "reactivate":
				routes = map[string]string{http.MethodPost: cipherscale.RouteReactivateUser}
			case "invite":
				routes = map[string]string{http.MethodPost: cipherscale.RouteResendInvitation}
			case "roles":
				routes = map[string]string{http.MethodGet: cipherscale.RouteUserRoles, http.MethodPatch: cipherscale.RoutePatchRoles}
			case "groups":
				routes = map[string]string{http.MethodPost: cipherscale.RouteAddToGroups}
			}
		case 3:
			if segs[1] == "groups" {
				m.groupID = segs[2]
				routes = map[string]string{http.MethodDelete: cipherscale.RouteRemoveFromGroup}
			}
		}
	}
	if routes == nil {
		return apiMatch{}
	}
	if route, ok := routes[method]; ok {
		m.route = route
		return m
	}
	for method := range routes {
		m.allowed = append(m.allowed, method)
	}
	sort.Strings(m.allowed)
	return apiMatch{allowed: m.allowed}
}

// apiRoutes are the route templates of the API, as fault rules name them.
var apiRoutes = map[string]bool{
	cipherscale.RouteListUsers: true, cipherscale.RouteCreateUsers: true, cipherscale.RouteGetUser: true,
	cipherscale.RouteUpdateProfile: true, cipherscale.RouteDeleteUser: true, cipherscale.RouteDeactivateUser: true,
	cipherscale.RouteReactivateUser: true, cipherscale.RouteResendInvitation: true, cipherscale.RouteUserRoles: true,
	cipherscale.RoutePatchRoles: true, cipherscale.RouteAddToGroups: true, cipherscale.RouteRemoveFromGroup: true,
}

func (s *Server) authorized(r *http.Request) bool {
	got := r.Header.Get("apikey")
	if s.apiKey == "" || got == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.apiKey)) == 1
}

// limit takes a token from the bucket; when there is none it returns the wait in whole seconds.
func (s *Server) limit() (retryAfter int, limited bool) {
	s.mu.Lock()
	lim := s.limiter
	s.mu.Unlock()
	if lim == nil {
		return 0, false
	}
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return 1, true
	}
	delay := res.DelayFrom(now)
	if delay <= 0 {
		return 0, false
	}
	res.CancelAt(now)
	secs := int(math.Ceil(delay.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return secs, true
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	m := matchAPI(r.Method, r.URL.Path)
	statRoute := m.route
	if statRoute == "" {
		statRoute = RouteUnmatched
	}
	finish := func(resp response) {
		s.record(statRoute, resp.status)
		write(w, resp)
	}

	if !strings.HasPrefix(r.URL.Path, "/tenants/") {
		finish(errorf(http.StatusNotFound, "no such path"))
		return
	}
	if !s.authorized(r) {
		finish(errorf(http.StatusUnauthorized, "missing or invalid API key"))
		return
	}
	if secs, limited := s.limit(); limited {
		resp := errorf(http.StatusTooManyRequests, "rate limit exceeded")
		resp.header = map[string]string{"Retry-After": strconv.Itoa(secs)}
		finish(resp)
		return
	}
	if m.route == "" {
		if m.allowed != nil {
			resp := errorf(http.StatusMethodNotAllowed, "method %s is not allowed here", r.Method)
			resp.header = map[string]string{"Allow": strings.Join(m.allowed, ", ")}
			finish(resp)
			return
		}
		finish(errorf(http.StatusNotFound, "no such path"))
		return
	}

	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(m.route, r)
	}
	f := s.pickFault(m.route)
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	var resp response
	if f.status != 0 {
		resp = errorf(f.status, "injected fault")
		if f.retryAfter > 0 {
			resp.header = map[string]string{"Retry-After": strconv.Itoa(f.retryAfter)}
		}
	} else {
		resp = s.handleAPI(m, r)
	}
	if f.drop {
		s.record(statRoute, resp.status)
		dropConnection(w)
		return
	}
	finish(resp)
}

// dropConnection closes the connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or a writer that cannot be hijacked: abort the response without a log line.
	panic(http.ErrAbortHandler)
}
