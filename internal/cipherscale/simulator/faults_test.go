package simulator

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

func ptr[T any](v T) *T { return &v }

func TestFaultStatusAndRetryAfter(t *testing.T) {
	s, ts := newTestServer(t)
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteCreateUsers, Status: 503, RetryAfterSeconds: 7}})

	r := do(t, ts.URL, testKey, "POST", "/tenants/users", userJSON("f@x.io"))
	if r.status != 503 || r.header.Get("Retry-After") != "7" {
		t.Fatalf("status %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if eb := decode[cipherscale.ErrorBody](t, r.body); eb.Code == "" || eb.Message == "" {
		t.Errorf("fault body %s", r.body)
	}
	if _, ok := s.UserByEmail("f@x.io"); ok {
		t.Error("a faulted create was applied")
	}
	if s.InvitationsSent("f@x.io") != 0 {
		t.Error("a faulted create sent an invitation")
	}
	// Other routes are served.
	if r := do(t, ts.URL, testKey, "GET", "/tenants/users", ""); r.status != 200 {
		t.Errorf("list: %d", r.status)
	}
	// The API key is checked before faults.
	if r := do(t, ts.URL, "", "POST", "/tenants/users", userJSON("f@x.io")); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}
	st := s.Stats()
	if st.CountStatus(cipherscale.RouteCreateUsers, 503) != 1 || st.CountStatus(cipherscale.RouteCreateUsers, 401) != 1 ||
		st.Count(cipherscale.RouteCreateUsers) != 2 || st.Total != 3 {
		t.Errorf("stats %+v", st)
	}

	s.ClearFaults()
	if r := do(t, ts.URL, testKey, "POST", "/tenants/users", userJSON("f@x.io")); r.status != 201 {
		t.Errorf("after ClearFaults: %d", r.status)
	}
}

func TestFaultEveryRouteAndCount(t *testing.T) {
	s, ts := newTestServer(t)
	owner := fixture(t, s)
	s.SetFaults([]FaultRule{{Status: 502, Count: 3}})
	for i, path := range []string{"/tenants/users", "/tenants/users/" + owner, "/tenants/users/" + owner + "/roles"} {
		if r := do(t, ts.URL, testKey, "GET", path, ""); r.status != 502 {
			t.Errorf("request %d: %d, want 502", i, r.status)
		}
	}
	if r := do(t, ts.URL, testKey, "GET", "/tenants/users", ""); r.status != 200 {
		t.Errorf("after count: %d", r.status)
	}
	if r := do(t, ts.URL, testKey, "GET", "/tenants/users/"+owner, ""); r.status != 200 {
		t.Errorf("after count: %d", r.status)
	}
	// Unknown paths are not faulted.
	s.SetFaults([]FaultRule{{Status: 500}})
	if r := do(t, ts.URL, testKey, "GET", "/tenants/nope", ""); r.status != 404 {
		t.Errorf("unknown path: %d", r.status)
	}
}

func TestFaultRate(t *testing.T) {
	s, ts := newTestServer(t)
	count := func(n int) int {
		faulted := 0
		for i := 0; i < n; i++ {
			if r := do(t, ts.URL, testKey, "GET", "/tenants/users", ""); r.status == 500 {
				faulted++
			}
		}
		return faulted
	}
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteListUsers, Status: 500, Rate: ptr(0.0)}})
	if n := count(50); n != 0 {
		t.Errorf("rate 0: %d faulted", n)
	}
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteListUsers, Status: 500, Rate: ptr(1.0)}})
	if n := count(50); n != 50 {
		t.Errorf("rate 1: %d faulted", n)
	}
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteListUsers, Status: 500, Rate: ptr(0.5)}})
	if n := count(300); n < 90 || n > 210 {
		t.Errorf("rate 0.5: %d of 300 faulted", n)
	}
	// Rate and count together: fires exactly count times eventually.
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteListUsers, Status: 500, Rate: ptr(0.5), Count: 5}})
	if n := count(200); n != 5 {
		t.Errorf("rate 0.5 count 5: %d faulted", n)
	}
}

func TestFaultLatency(t *testing.T) {
	s, ts := newTestServer(t)
	s.SetFaults([]FaultRule{
		{LatencyMs: 120},
		{Route: cipherscale.RouteCreateUsers, Status: 500},
	})
	start := time.Now()
	if r := do(t, ts.URL, testKey, "GET", "/tenants/users", ""); r.status != 200 {
		t.Errorf("list: %d", r.status)
	}
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Errorf("list took %v, want >= 120ms", d)
	}
	start = time.Now()
	if r := do(t, ts.URL, testKey, "POST", "/tenants/users", userJSON("l@x.io")); r.status != 500 {
		t.Errorf("create: %d, want the later status rule to fire too", r.status)
	}
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Errorf("create took %v, want >= 120ms", d)
	}
	// A latency that outlasts the client's patience still applies the request.
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteCreateUsers, LatencyMs: 300}})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest("POST", ts.URL+"/tenants/users", strings.NewReader(userJSON("slow@x.io")))
	req.Header.Set("apikey", testKey)
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("want a client timeout")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := s.UserByEmail("slow@x.io"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the timed-out create was never applied")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFaultDrop(t *testing.T) {
	s, ts := newTestServer(t)
	// A fresh connection per request: Go's transport silently retries a GET that failed on a
	// reused connection, which would hide the drop.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteCreateUsers, Drop: true, Count: 1}})
	req, _ := http.NewRequest("POST", ts.URL+"/tenants/users", strings.NewReader(userJSON("drop@x.io")))
	req.Header.Set("apikey", testKey)
	resp, err := client.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("want a dropped connection, got %d", resp.StatusCode)
	}
	u, ok := s.UserByEmail("drop@x.io")
	if !ok || u.Status != cipherscale.StatusPending || s.InvitationsSent("drop@x.io") != 1 {
		t.Fatalf("the dropped create was not applied: %+v %t", u, ok)
	}
	if got := s.Stats().CountStatus(cipherscale.RouteCreateUsers, 201); got != 1 {
		t.Errorf("dropped create counted %d times under 201", got)
	}
	// Retrying blindly now conflicts, as with the real service.
	if r := do(t, ts.URL, testKey, "POST", "/tenants/users", userJSON("drop@x.io")); r.status != 409 {
		t.Errorf("retry: %d", r.status)
	}

	// Drop with a status: not applied, no answer.
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteDeleteUser, Status: 500, Drop: true}})
	req, _ = http.NewRequest("DELETE", ts.URL+"/tenants/users/"+u.ID, nil)
	req.Header.Set("apikey", testKey)
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("want a dropped connection, got %d", resp.StatusCode)
	}
	if _, ok := s.UserByID(u.ID); !ok {
		t.Error("a drop with a status applied the request")
	}
	if got := s.Stats().CountStatus(cipherscale.RouteDeleteUser, 500); got != 1 {
		t.Errorf("stats %+v", s.Stats())
	}

	// A dropped read: the handler's status is counted.
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteGetUser, Drop: true}})
	req, _ = http.NewRequest("GET", ts.URL+"/tenants/users/"+u.ID, nil)
	req.Header.Set("apikey", testKey)
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("want a dropped connection, got %d", resp.StatusCode)
	}
	if got := s.Stats().CountStatus(cipherscale.RouteGetUser, 200); got != 1 {
		t.Errorf("stats %+v", s.Stats())
	}
}

func TestRateLimit(t *testing.T) {
	s, ts := newTestServer(t)
	s.SetLimit(1, 2)
	var statuses []int
	for i := 0; i < 3; i++ {
		statuses = append(statuses, do(t, ts.URL, testKey, "GET", "/tenants/users", "").status)
	}
	if fmt.Sprint(statuses) != "[200 200 429]" {
		t.Fatalf("statuses %v", statuses)
	}
	r := do(t, ts.URL, testKey, "GET", "/tenants/users", "")
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != 429 || err != nil || secs < 1 {
		t.Fatalf("status %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if eb := decode[cipherscale.ErrorBody](t, r.body); eb.Code != "too_many_requests" {
		t.Errorf("body %s", r.body)
	}
	// A bad key is refused before the limit.
	if r := do(t, ts.URL, "", "GET", "/tenants/users", ""); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}
	if got := s.Stats().CountStatus(cipherscale.RouteListUsers, 429); got != 2 {
		t.Errorf("429s counted %d", got)
	}

	// A slow bucket asks for a long wait.
	s.SetLimit(0.1, 1)
	do(t, ts.URL, testKey, "GET", "/tenants/users", "")
	r = do(t, ts.URL, testKey, "GET", "/tenants/users", "")
	if r.status != 429 || (r.header.Get("Retry-After") != "10" && r.header.Get("Retry-After") != "9") {
		t.Errorf("status %d Retry-After %q, want about 10", r.status, r.header.Get("Retry-After"))
	}

	// Through the control surface, and off again.
	if r := do(t, ts.URL, "", "PUT", "/_sim/limits", `{"requestsPerSecond":0,"burst":0}`); r.status != 204 {
		t.Fatalf("PUT /_sim/limits: %d", r.status)
	}
	for i := 0; i < 20; i++ {
		if r := do(t, ts.URL, testKey, "GET", "/tenants/users", ""); r.status != 200 {
			t.Fatalf("unlimited request %d: %d", i, r.status)
		}
	}
	if r := do(t, ts.URL, "", "PUT", "/_sim/limits", `{"requestsPerSecond":1000,"burst":1}`); r.status != 204 {
		t.Fatalf("PUT /_sim/limits: %d", r.status)
	}
	if r := do(t, ts.URL, testKey, "GET", "/tenants/users", ""); r.status != 200 {
		t.Errorf("first request under a limit: %d", r.status)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, ts := newTestServer(t)
	fixture(t, s)
	s.SetFaults([]FaultRule{{Route: cipherscale.RouteGetUser, Status: 500, Rate: ptr(0.2)}})
	var wg sync.WaitGroup
	const workers, each = 8, 15
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := do(t, ts.URL, testKey, "POST", "/tenants/users", userJSON(fmt.Sprintf("w%d-%d@x.io", w, i), groupEng))
				if r.status != 201 {
					t.Errorf("create: %d", r.status)
					return
				}
				u := decode[cipherscale.User](t, r.body)
				do(t, ts.URL, testKey, "GET", "/tenants/users/"+u.ID, "")
				do(t, ts.URL, testKey, "PATCH", "/tenants/users/"+u.ID+"/roles", `{"addedRoles":["role-admin"],"removedRoles":[]}`)
				do(t, ts.URL, testKey, "GET", "/tenants/users?sort=email&limit=5", "")
				_ = s.Stats()
				_ = s.Users()
			}
		}(w)
	}
	wg.Wait()
	if n := len(s.Users()); n != workers*each+1 {
		t.Errorf("%d users", n)
	}
	st := s.Stats()
	if st.Total != workers*each*4 || st.Count(cipherscale.RouteGetUser) != workers*each {
		t.Errorf("stats total %d", st.Total)
	}
}
