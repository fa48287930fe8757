// Command bench measures the operator against the simulator: the API calls it makes to bring N
// new CipherscaleUsers to Ready beside the lower bound the API allows, the time that takes, the
// calls per resync once everything is in sync, and the manager's memory and CPU. It prints a
// report and writes it to bin/bench/report.md. `make bench` runs it; it is not a test.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const apiKey = "bench-api-key"

type params struct {
	n          int
	latency    time.Duration
	limit      float64
	resync     time.Duration
	resyncs    int
	workers    int
	out        string
	readyLimit time.Duration
}

func main() {
	var p params
	flag.IntVar(&p.n, "n", 1000, "Number of CipherscaleUsers.")
	flag.DurationVar(&p.latency, "latency", 20*time.Millisecond, "Latency the simulator adds to every request.")
	flag.Float64Var(&p.limit, "limit", 50, "The simulator's request limit per second (0: none).")
	flag.DurationVar(&p.resync, "resync", 20*time.Second, "The manager's --resync-interval.")
	flag.IntVar(&p.resyncs, "resyncs", 3, "Resync intervals to sit through in the steady state.")
	flag.IntVar(&p.workers, "max-concurrent-reconciles", 128, "The manager's --max-concurrent-reconciles.")
	flag.StringVar(&p.out, "out", "", "Report file (default bin/bench/report-N.md and bin/bench/report.md).")
	flag.DurationVar(&p.readyLimit, "ready-timeout", 30*time.Minute, "How long to wait for all Ready.")
	flag.Parse()
	if err := run(p); err != nil {
		fmt.Fprintln(os.Stderr, "bench failed:", err)
		os.Exit(1)
	}
}

func run(p params) error {
	root, err := devenv.Root()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "bin", "bench")
	ctx := context.Background()
	var cleanup devenv.Group
	defer cleanup.Run()

	fmt.Printf("==> Starting kube-apiserver, etcd and the simulator (latency %s, limit %g/s)\n", p.latency, p.limit)
	cp, err := devenv.StartControlPlane(root, filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return err
	}
	cleanup.Defer(func() { _ = cp.Stop() })
	sim, err := devenv.StartSimulator(filepath.Join(root, "bin", "cipherscale-sim"), filepath.Join(dir, "simulator.log"), apiKey)
	if err != nil {
		return err
	}
	cleanup.Defer(func() { sim.Stop(5 * time.Second) })
	control := devenv.NewSimControl(sim.URL)
	role, group, err := seed(ctx, sim.URL)
	if err != nil {
		return err
	}
	if p.latency > 0 {
		if err := control.SetFaults(ctx, []simulator.FaultRule{{LatencyMs: int(p.latency / time.Millisecond)}}); err != nil {
			return err
		}
	}
	qps, burst := 10000.0, 1000
	if p.limit > 0 {
		if err := control.SetLimit(ctx, p.limit, int(math.Max(1, p.limit))); err != nil {
			return err
		}
		// Stay just under the API's limit, with a burst that cannot outrun its bucket.
		qps, burst = p.limit*0.97, int(math.Max(1, p.limit/5))
	}
	if err := control.ResetStats(ctx); err != nil {
		return err
	}

	metricsPort, err := devenv.FreePort()
	if err != nil {
		return err
	}
	fmt.Printf("==> Starting the manager (qps %.1f, burst %d, resync %s, %d workers)\n", qps, burst, p.resync, p.workers)
	mgr, err := devenv.Start("manager", filepath.Join(dir, "manager.log"),
		[]string{"KUBECONFIG=" + cp.Kubeconfig, "CIPHERSCALE_API_KEY=" + apiKey},
		filepath.Join(root, "bin", "manager"),
		"--api-url", sim.URL, "--resync-interval", p.resync.String(),
		"--qps", strconv.FormatFloat(qps, 'f', 2, 64), "--burst", strconv.Itoa(burst),
		"--max-concurrent-reconciles", strconv.Itoa(p.workers),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--metrics-secure=false",
		"--health-probe-bind-address", "0",
		// The users get a role nobody holds yet, whose type the operator cannot see: privileged
		// unless allowed (see "Security model" in the README).
		"--privileged-namespaces", "*")
	if err != nil {
		return err
	}
	cleanup.Defer(func() { mgr.Stop(10 * time.Second) })

	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = iamv1alpha1.AddToScheme(scheme)
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 1000, 2000
	kube, err := client.New(&cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	fmt.Printf("==> Creating %d CipherscaleUsers (each with a profile, one role and one group)\n", p.n)
	start := time.Now()
	if err := createUsers(ctx, kube, p.n, role, group); err != nil {
		return err
	}
	created := time.Since(start)
	allReady, err := waitReady(ctx, kube, p.n, start, p.readyLimit, mgr)
	if err != nil {
		return err
	}
	stats1, err := control.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("    all Ready after %s (objects created in %s)\n", allReady.Round(time.Millisecond), created.Round(time.Millisecond))

	fmt.Printf("==> Steady state: %d resync intervals of %s\n", p.resyncs, p.resync)
	if err := control.ResetStats(ctx); err != nil {
		return err
	}
	time.Sleep(time.Duration(p.resyncs) * p.resync)
	stats2, err := control.Stats(ctx)
	if err != nil {
		return err
	}
	metrics, err := scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		return err
	}
	rss, cpu := procStats(mgr.Cmd.Process.Pid)
	notReady, err := countNotReady(ctx, kube)
	if err != nil {
		return err
	}

	r := report{p: p, stats1: stats1, stats2: stats2, allReady: allReady, created: created, metrics: metrics,
		rssKiB: rss, cpu: cpu, notReady: notReady, qps: qps}
	text := r.String()
	fmt.Print("\n" + text)
	out := p.out
	if out == "" {
		out = filepath.Join(dir, fmt.Sprintf("report-%d.md", p.n))
	}
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nReport written to %s and %s\n", out, filepath.Join(dir, "report.md"))
	return nil
}

func seed(ctx context.Context, url string) (role, group string, err error) {
	c := devenv.NewSimControl(url)
	var r cipherscale.Role
	if err := c.Post(ctx, "/_sim/roles", map[string]string{"name": "Bench", "type": "SUPPORT"}, &r); err != nil {
		return "", "", err
	}
	var g cipherscale.Group
	if err := c.Post(ctx, "/_sim/groups", map[string]any{"name": "Bench", "roles": []string{}}, &g); err != nil {
		return "", "", err
	}
	return r.ID, g.ID, nil
}

func createUsers(ctx context.Context, kube client.Client, n int, role, group string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				u := &iamv1alpha1.CipherscaleUser{
					ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("user-%05d", i)},
					Spec: iamv1alpha1.CipherscaleUserSpec{
						Email:     fmt.Sprintf("user-%05d@bench.example.com", i),
						FirstName: ptr(fmt.Sprintf("First%d", i)), LastName: ptr("Bench"),
						Roles: &[]string{role}, Groups: &[]string{group},
					},
				}
				if err := kube.Create(ctx, u); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func ptr[T any](v T) *T { return &v }

func countNotReady(ctx context.Context, kube client.Client) (int, error) {
	var list iamv1alpha1.CipherscaleUserList
	if err := kube.List(ctx, &list); err != nil {
		return 0, err
	}
	n := 0
	for _, u := range list.Items {
		if !meta.IsStatusConditionTrue(u.Status.Conditions, iamv1alpha1.ConditionReady) {
			n++
		}
	}
	return n, nil
}

func waitReady(ctx context.Context, kube client.Client, n int, start time.Time, limit time.Duration, mgr *devenv.Process) (time.Duration, error) {
	last := -1
	for time.Since(start) < limit {
		var list iamv1alpha1.CipherscaleUserList
		if err := kube.List(ctx, &list); err != nil {
			return 0, err
		}
		ready := 0
		for _, u := range list.Items {
			if meta.IsStatusConditionTrue(u.Status.Conditions, iamv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready == n {
			return time.Since(start), nil
		}
		if mgr.Exited() {
			return 0, fmt.Errorf("the manager exited: %s", tail(mgr.Log(), 40))
		}
		if ready != last && (ready-last >= n/10 || ready == n) {
			fmt.Printf("    %d/%d Ready after %s\n", ready, n, time.Since(start).Round(time.Second))
			last = ready
		}
		time.Sleep(250 * time.Millisecond)
	}
	return 0, fmt.Errorf("not all Ready within %s", limit)
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// scrape reads cipherscale_api_requests_total by route from the manager's metrics.
func scrape(url string) (map[string]int, error) {
	resp, err := http.Get(url) //nolint:gosec // loopback
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cipherscale_api_requests_total{") {
			continue
		}
		i := strings.Index(line, `route="`)
		j := strings.LastIndex(line, " ")
		if i < 0 || j < 0 {
			continue
		}
		route, _, ok := strings.Cut(line[i+len(`route="`):], `"`)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[j+1:], 64)
		if err != nil {
			continue
		}
		out[route] += int(v)
	}
	return out, sc.Err()
}

// procStats returns the peak resident memory (KiB) and the CPU seconds of a process.
func procStats(pid int) (int, float64) {
	rss := 0
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				f := strings.Fields(l)
				rss, _ = strconv.Atoi(f[1])
			}
		}
	}
	cpu := 0.0
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		if len(f) > 12 {
			ut, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			cpu = (ut + st) / 100 // USER_HZ
		}
	}
	return rss, cpu
}

type report struct {
	p              params
	stats1, stats2 simulator.Stats
	allReady       time.Duration
	created        time.Duration
	metrics        map[string]int
	rssKiB         int
	cpu            float64
	notReady       int
	qps            float64
}

func (r report) String() string {
	var b strings.Builder
	n := r.p.n
	lowerCreates := (n + cipherscale.MaxCreateBatch - 1) / cipherscale.MaxCreateBatch
	lower := lowerCreates + n + n + 1
	total := r.stats1.Total
	fmt.Fprintf(&b, "# cipherscale-operator benchmark\n\n")
	fmt.Fprintf(&b, "N=%d users, simulator latency %s, limit %s, resync %s, %d workers, on %s\n\n",
		n, r.p.latency, limitText(r.p.limit), r.p.resync, r.p.workers, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "## Stage 1: %d new CipherscaleUsers to Ready\n\n", n)
	fmt.Fprintf(&b, "| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| time from the first create to all Ready | %s |\n", r.allReady.Round(time.Millisecond))
	fmt.Fprintf(&b, "| API calls | %d |\n", total)
	fmt.Fprintf(&b, "| lower bound (%d creates of 100 + %d profile writes + %d role patches + 1 list) | %d |\n", lowerCreates, n, n, lower)
	fmt.Fprintf(&b, "| calls / lower bound | %.3f |\n", float64(total)/float64(lower))
	if r.p.limit > 0 {
		ideal := time.Duration(float64(lower) / r.p.limit * float64(time.Second))
		fmt.Fprintf(&b, "| time the lower bound needs at %g/s | %s |\n", r.p.limit, ideal.Round(time.Millisecond))
		fmt.Fprintf(&b, "| time / lower-bound time | %.3f |\n", r.allReady.Seconds()/ideal.Seconds())
	}
	throttled := countStatus(r.stats1, 429) + countStatus(r.stats2, 429)
	fmt.Fprintf(&b, "| 429 answers | %d (%.2f%% of calls) |\n\n", throttled, 100*float64(throttled)/math.Max(1, float64(total+r.stats2.Total)))
	fmt.Fprintf(&b, "Calls by route and status:\n\n| route | status | calls |\n|---|---|---|\n")
	for _, s := range sortedStats(r.stats1) {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", s.Route, s.Status, s.Count)
	}
	perResync := float64(r.stats2.Total) / float64(r.p.resyncs)
	fmt.Fprintf(&b, "\n## Stage 2: steady state, %d resync intervals\n\n| figure | value |\n|---|---|\n", r.p.resyncs)
	fmt.Fprintf(&b, "| calls in %d intervals | %d |\n", r.p.resyncs, r.stats2.Total)
	fmt.Fprintf(&b, "| calls per resync interval | %.1f |\n", perResync)
	fmt.Fprintf(&b, "| target: ceil(N/100)+1 | %d |\n", (n+99)/100+1)
	fmt.Fprintf(&b, "| per-object polling would make (2N) | %d |\n", 2*n)
	fmt.Fprintf(&b, "| write calls in the steady state | %d |\n", writes(r.stats2))
	fmt.Fprintf(&b, "| objects not Ready at the end | %d |\n", r.notReady)
	for _, s := range sortedStats(r.stats2) {
		fmt.Fprintf(&b, "| %s %d | %d |\n", s.Route, s.Status, s.Count)
	}
	fmt.Fprintf(&b, "\n## The manager process\n\n| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| peak resident memory (VmHWM) | %.1f MiB |\n", float64(r.rssKiB)/1024)
	fmt.Fprintf(&b, "| CPU time (user+system) | %.1f s |\n", r.cpu)
	simTotal := map[string]int{}
	for _, s := range append(append([]simulator.RouteStat{}, r.stats1.Requests...), r.stats2.Requests...) {
		simTotal[s.Route] += s.Count
	}
	agree := true
	var rows []string
	for route, c := range simTotal {
		m := r.metrics[route]
		if m != c {
			agree = false
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %d |", route, m, c))
	}
	sort.Strings(rows)
	fmt.Fprintf(&b, "\n## The operator's metrics against the simulator's statistics\n\n")
	fmt.Fprintf(&b, "Agree: %v\n\n| route | cipherscale_api_requests_total | simulator |\n|---|---|---|\n%s\n", agree, strings.Join(rows, "\n"))
	return b.String()
}

func limitText(l float64) string {
	if l <= 0 {
		return "none"
	}
	return fmt.Sprintf("%g requests/s", l)
}

func countStatus(s simulator.Stats, status int) int {
	n := 0
	for _, r := range s.Requests {
		if r.Status == status {
			n += r.Count
		}
	}
	return n
}

func writes(s simulator.Stats) int {
	n := 0
	for _, r := range s.Requests {
		if !strings.HasPrefix(r.Route, "GET ") {
			n += r.Count
		}
	}
	return n
}

func sortedStats(s simulator.Stats) []simulator.RouteStat {
	out := append([]simulator.RouteStat{}, s.Requests...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Route != out[j].Route {
			return out[i].Route < out[j].Route
		}
		return out[i].Status < out[j].Status
	})
	return out
}
