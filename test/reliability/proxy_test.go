package reliability

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
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

	mu       sync.Mutex
	requests []proxied
	// pids caches the sending process of each connection, by its remote address.
	pids      map[string]int
	intercept func(route string, r *http.Request) (status int, body []byte, ok bool)
	rewrite   func(route string, r *http.Request, body []byte) []byte
}

type proxied struct {
	at    time.Time
	route string
	// pid is the process that sent the request (peerPID), 0 when unknown.
	pid int
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
		pid, ok := p.pids[r.RemoteAddr]
		if !ok {
			pid = peerPID(r.RemoteAddr)
			if p.pids == nil {
				p.pids = map[string]int{}
			}
			p.pids[r.RemoteAddr] = pid
		}
		p.requests = append(p.requests, proxied{at: time.Now(), route: route, pid: pid})
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

// countFrom returns the requests of a route (all routes when empty) that process pid sent since t.
func (p *apiProxy) countFrom(pid int, route string, since time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		if r.pid == pid && !r.at.Before(since) && (route == "" || r.route == route) {
			n++
		}
	}
	return n
}

// countFromBetween returns the requests of a route that process pid sent in [from, to).
func (p *apiProxy) countFromBetween(pid int, route string, from, to time.Time) int {
	return p.countFrom(pid, route, from) - p.countFrom(pid, route, to)
}

// firstFrom returns when process pid sent its first request at or after t; zero when none.
func (p *apiProxy) firstFrom(pid int, since time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.requests {
		if r.pid == pid && !r.at.Before(since) {
			return r.at
		}
	}
	return time.Time{}
}

// peerPID returns the process on this machine that holds the client end of a loopback TCP
// connection whose remote address (the proxy's view) is addr: the socket whose local port is
// addr's port, found in /proc/net/tcp{,6}, then the process with that socket among its file
// descriptors. 0 when it cannot be told (not Linux, the process is gone). Several managers can
// then share one tenant URL, and the proxy still tells their calls apart.
func peerPID(addr string) int {
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return 0
	}
	var inode string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			i := strings.LastIndex(f[1], ":")
			if p, err := strconv.ParseInt(f[1][i+1:], 16, 32); err == nil && int(p) == port {
				inode = f[9]
				break
			}
		}
		if inode != "" {
			break
		}
	}
	if inode == "" || inode == "0" {
		return 0
	}
	want := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name())); err == nil && target == want {
				return pid
			}
		}
	}
	return 0
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
