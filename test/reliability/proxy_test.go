package reliability

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// apiProxy sits between a manager and the simulator. It counts the requests it forwards, by
// route template, and can answer some requests itself (intercept) or rewrite the answers
// (rewrite), to play a service that returns malformed responses.
type apiProxy struct {
	URL string

	mu        sync.Mutex
	requests  []proxied
	intercept func(route string, r *http.Request) (status int, body []byte, ok bool)
	rewrite   func(route string, r *http.Request, body []byte) []byte
}

type proxied struct {
	at    time.Time
	route string
}

func startProxy(target string) *apiProxy {
	GinkgoHelper()
	u, err := url.Parse(target)
	Expect(err).NotTo(HaveOccurred())
	p := &apiProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		ModifyResponse: func(resp *http.Response) error {
			p.mu.Lock()
			rw := p.rewrite
			p.mu.Unlock()
			if rw == nil || resp.StatusCode < 200 || resp.StatusCode >= 300 {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = rw(routeOf(resp.Request.Method, resp.Request.URL.Path), resp.Request, b)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r.Method, r.URL.Path)
		p.mu.Lock()
		p.requests = append(p.requests, proxied{at: time.Now(), route: route})
		ic := p.intercept
		p.mu.Unlock()
		if ic != nil {
			if status, body, ok := ic(route, r); ok {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = w.Write(body)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	DeferCleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// set replaces the interception and rewriting; nil for both forwards everything unchanged.
func (p *apiProxy) set(intercept func(string, *http.Request) (int, []byte, bool), rewrite func(string, *http.Request, []byte) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.intercept, p.rewrite = intercept, rewrite
}

// count returns the requests of a route (all routes when empty) received since t.
func (p *apiProxy) count(route string, since time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		if !r.at.Before(since) && (route == "" || r.route == route) {
			n++
		}
	}
	return n
}

// countBetween returns the requests of a route received in [from, to).
func (p *apiProxy) countBetween(route string, from, to time.Time) int {
	return p.count(route, from) - p.count(route, to)
}

// routeOf names a request by the route template of the cipherscale.Route* constants.
func routeOf(method, path string) string {
	const base = "/tenants/users"
	if path == base {
		return method + " " + base
	}
	rest, ok := strings.CutPrefix(path, base+"/")
	if !ok {
		return "unmatched"
	}
	segs := strings.Split(rest, "/")
	switch len(segs) {
	case 1:
		return method + " " + base + "/{id}"
	case 2:
		return method + " " + base + "/{id}/" + segs[1]
	case 3:
		return method + " " + base + "/{id}/groups/{groupId}"
	}
	return "unmatched"
}
