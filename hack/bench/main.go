// Command bench measures the operator against the simulator on a mixed workload: N
// CipherscaleUsers of which half already exist in the tenant (adopted) and half are new, with
// profiles, roles and groups, plus CipherscaleGroupMemberships (Additive and Authoritative, by
// userRef and by email). It reports the API calls beside the lower bound the API allows, the
// time to all Ready beside the bound's time at the tenant's limit, the 429s, the calls per
// resync in the steady state, the manager's peak memory and CPU, and the time one more user
// takes to be Ready on an idle operator. Every setting is written next to the figures.
//
// The manager and ClusterCipherscaleTenant/default run at their shipped defaults except the
// tenant's requestsPerSecond (the simulator's limit) and resyncInterval (short, so that the
// steady state fits in a minute); the report says which
// flags were passed. `make bench` runs it; it is a program that prints figures, not a test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const apiKey = "bench-api-key"

type params struct {
	n              int
	latency        time.Duration
	limit          float64
	resync         time.Duration
	resyncs        int
	workloadResync string
	qps            float64
	workers        string // empty: the manager's default, not passed
	burst          string
	window         string
	managerEnv     string
	managerBin     string
	applies        int
	out            string
	readyLimit     time.Duration
	pprof          string
	command        string
	isoUsers       int
	isoRounds      int
	paced          int
	slowUsers      int
	slowRounds     int
	latencyGap     time.Duration
	managerArgs    string
	fleetTenants   int
	fleetUsers     int
	fleetLimit     float64
	fleetBurst     int
	fleetProbe     int
	fleetOut       string
	largeUsers     int
	largeDeclared  int
	largeLimit     float64
	largeProfile   bool
	largeOut       string
	plotPNG        bool
}

func main() {
	var p params
	flag.IntVar(&p.n, "n", 2000, "Number of CipherscaleUsers (half adopted, half new); 0: no mixed workload (the fleet and large stages only).")
	flag.DurationVar(&p.latency, "latency", 20*time.Millisecond, "Latency the simulator adds to every API request.")
	flag.Float64Var(&p.limit, "limit", 50, "The simulator's request limit per second (0: none); its burst is the same number.")
	flag.DurationVar(&p.resync, "resync", 20*time.Second, "The default tenant's spec.resyncInterval in the steady state (default 10m).")
	flag.StringVar(&p.workloadResync, "workload-resync", "", "The default tenant's spec.resyncInterval during the workload (empty: its default); the steady state restarts the manager with -resync.")
	flag.IntVar(&p.resyncs, "resyncs", 3, "Resync intervals to sit through in the steady state.")
	flag.Float64Var(&p.qps, "qps", 0, "The default tenant's spec.requestsPerSecond, rounded up (0: the simulator's limit; with no limit, the CRD's default).")
	flag.StringVar(&p.workers, "max-concurrent-reconciles", "", "The manager's --max-concurrent-reconciles (empty: its default).")
	flag.StringVar(&p.burst, "burst", "", "The default tenant's spec.burst (empty: the CRD's default).")
	flag.StringVar(&p.window, "create-batch-window", "", "The manager's --create-batch-window (empty: its default).")
	flag.StringVar(&p.managerEnv, "manager-env", "", "Comma-separated KEY=VALUE added to the manager's environment, such as GOMEMLIMIT=100MiB.")
	flag.StringVar(&p.managerBin, "manager", "", "Manager binary (default bin/manager).")
	flag.IntVar(&p.applies, "applies", 50, "Sequential applies of one CipherscaleUser on the idle operator, for latency.")
	flag.StringVar(&p.out, "out", "", "Report file (default bin/bench/report-N.md; bin/bench/report.md always).")
	flag.StringVar(&p.pprof, "pprof", "", "Address (host:port on loopback) the manager serves pprof on, passed to it as --pprof-bind-address; heap profiles go to bin/bench/heap-N-*.pb.gz.")
	flag.DurationVar(&p.readyLimit, "ready-timeout", 30*time.Minute, "How long to wait for all Ready.")
	flag.IntVar(&p.isoUsers, "isolation-users", 100, "Users per batch of the tenant isolation stage (0: no such stage).")
	flag.IntVar(&p.isoRounds, "isolation-rounds", 3, "Rounds of the tenant isolation stage, each one batch alone and one beside a throttled tenant.")
	flag.IntVar(&p.slowUsers, "slow-users", 30, "Users per batch of the slow-tenant stage (0: no such stage).")
	flag.IntVar(&p.slowRounds, "slow-rounds", 3, "Rounds of the slow-tenant stage, each one batch alone and one beside the slow tenant at work.")
	flag.IntVar(&p.paced, "paced", 200, "Users of the one-file-at-a-time stage, one kubectl apply per file (0: no such stage).")
	flag.DurationVar(&p.latencyGap, "latency-gap", 1500*time.Millisecond, "Idle time before each latency apply: an operator that saw a create within the last second takes the next one for a stream and keeps its batch open.")
	flag.StringVar(&p.managerArgs, "manager-args", "", "Flags added to the manager of the fleet and large-tenant stages, separated by commas, such as --max-tenant-list-mib=512.")
	flag.IntVar(&p.fleetTenants, "fleet-tenants", 0, "Tenants of the fleet stage, each its own simulator and CipherscaleTenant (0: no such stage). Runs before the mixed workload, on a control plane and manager of its own.")
	flag.IntVar(&p.fleetUsers, "fleet-users", 200, "CipherscaleUsers per tenant of the fleet stage (the mixed workload: half adopted, half new).")
	flag.Float64Var(&p.fleetLimit, "fleet-limit", 10, "Each fleet tenant's request limit per second, in its simulator and its spec.requestsPerSecond.")
	flag.IntVar(&p.fleetBurst, "fleet-burst", 0, "Each fleet tenant's spec.burst, the probe's too (0: half the simulator's burst, which is its limit).")
	flag.IntVar(&p.fleetProbe, "fleet-probe", 30, "New users of the fleet's probe tenant, applied on the idle fleet and beside the fleet at work (0: none).")
	flag.StringVar(&p.fleetOut, "fleet-out", "", "The fleet stage's report (default bin/bench/report-fleet-TxU.md; its plot beside it, .svg).")
	flag.IntVar(&p.largeUsers, "large-users", 0, "Users of the large-tenant stage's tenant (0: no such stage). Runs before the mixed workload, on a control plane and manager of its own.")
	flag.IntVar(&p.largeDeclared, "large-declared", 20000, "Users of the large tenant declared by CipherscaleUsers (adopted).")
	flag.Float64Var(&p.largeLimit, "large-limit", 0, "The large tenant's request limit per second (0: -limit).")
	flag.BoolVar(&p.largeProfile, "large-profile", true, "The large tenant's declared users declare a firstName and lastName (one profile write each); false: the email only.")
	flag.StringVar(&p.largeOut, "large-out", "", "The large-tenant stage's report (default bin/bench/report-large-L.md; its plot beside it, .svg).")
	flag.BoolVar(&p.plotPNG, "plot-png", false, "Also write each plot as a PNG beside its SVG.")
	flag.Parse()
	log.SetLogger(logr.Discard()) // the bench's own informers; the manager logs to bin/bench/manager.log
	p.command = commandLine()
	if err := run(p); err != nil {
		fmt.Fprintln(os.Stderr, "bench failed:", err)
		os.Exit(1)
	}
}

// commandLine is how to run this again: go run ./hack/bench with the flags given.
func commandLine() string {
	parts := []string{"go run ./hack/bench"}
	flag.Visit(func(f *flag.Flag) { parts = append(parts, "-"+f.Name+"="+f.Value.String()) })
	return strings.Join(parts, " ")
}

func run(p params) error {
	root, err := devenv.Root()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "bin", "bench")
	if p.managerBin == "" {
		p.managerBin = filepath.Join(root, "bin", "manager")
	}
	r := &result{p: p, commit: gitDescribe(root), loadStart: loadAvg(), started: time.Now().UTC(), goVersion: runtime.Version(), cpus: runtime.NumCPU()}
	if p.pprof != "" {
		r.pprofURL = "http://" + p.pprof
	}
	r.defaults, err = managerDefaults(p.managerBin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cleanup devenv.Group
	defer cleanup.Run()
	if p.fleetTenants > 0 {
		if err := runFleet(ctx, root, dir, p); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
	}
	if p.largeUsers > 0 {
		if err := runLarge(ctx, root, dir, p); err != nil {
			return fmt.Errorf("large tenant: %w", err)
		}
	}
	if p.n == 0 {
		return nil // -n 0: the mixed workload is not run
	}

	fmt.Printf("==> Starting kube-apiserver, etcd and the simulator\n")
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

	id, err := seedCatalog(ctx, control, blocks(p.n))
	if err != nil {
		return err
	}
	w := newWorkload(p.n, id)
	r.w, r.bound = w, w.bound()
	fmt.Printf("==> Seeding %d tenant users (%d to adopt, %d unmanaged members)\n", len(w.seeds), r.bound.adopted, len(w.seeds)-r.bound.adopted)
	if err := parallel(8, len(w.seeds), func(i int) error {
		_, err := control.AddUser(ctx, w.seeds[i])
		return err
	}); err != nil {
		return fmt.Errorf("seeding the tenant: %w", err)
	}
	if p.latency > 0 {
		if err := control.SetFaults(ctx, []simulator.FaultRule{{LatencyMs: int(p.latency / time.Millisecond)}}); err != nil {
			return err
		}
	}
	if p.limit > 0 {
		if err := control.SetLimit(ctx, p.limit, int(max(1, p.limit))); err != nil {
			return err
		}
	}
	if err := control.ResetStats(ctx); err != nil {
		return err
	}

	env := []string{"KUBECONFIG=" + cp.Kubeconfig}
	if p.managerEnv != "" {
		env = append(env, strings.Split(p.managerEnv, ",")...)
	}
	startManager := func(name, resync string) (*manager, error) {
		port, err := devenv.FreePort()
		if err != nil {
			return nil, err
		}
		// ClusterCipherscaleTenant/default holds the tenant's settings: the rate, the resync.
		// Half the workload adopts existing users, and its roles have types the operator cannot
		// see until someone holds them (privileged unless allowed); the latency probe's users are
		// deleted afterwards, past the default removal budget: see the security model and the
		// removal budget in docs/. The report lists these with the other settings.
		shown := []string{"ClusterCipherscaleTenant/default:"}
		setting := func(name, v string) { shown = append(shown, "spec."+name+"="+v) }
		var rps, burst *int32
		switch {
		case p.qps > 0:
			rps = ptr(int32(math.Ceil(p.qps)))
		case p.limit > 0:
			rps = ptr(int32(math.Ceil(p.limit)))
		}
		if rps != nil {
			setting("requestsPerSecond", strconv.Itoa(int(*rps)))
		}
		if p.burst != "" {
			b, err := strconv.Atoi(p.burst)
			if err != nil {
				return nil, fmt.Errorf("-burst: %w", err)
			}
			burst = ptr(int32(b))
			setting("burst", p.burst)
		}
		var every *metav1.Duration
		if resync != "" {
			d, err := time.ParseDuration(resync)
			if err != nil {
				return nil, fmt.Errorf("resync %q: %w", resync, err)
			}
			every = &metav1.Duration{Duration: d}
			setting("resyncInterval", resync)
		}
		shown = append(shown, "spec.adoption and spec.privileged: every namespace", "spec.removalBudget.perHour=0", "manager:")
		if err := cp.CreateDefaultTenant(ctx, sim.URL, apiKey, func(t *iamv1alpha1.ClusterCipherscaleTenant) {
			devenv.TrustAll(t)
			t.Spec.RequestsPerSecond, t.Spec.Burst, t.Spec.ResyncInterval = rps, burst, every
			t.Spec.RemovalBudget = &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(0))}
		}); err != nil {
			return nil, fmt.Errorf("configuring the default tenant: %w", err)
		}
		var args []string
		for _, f := range []struct{ name, v string }{{"max-concurrent-reconciles", p.workers}, {"create-batch-window", p.window}} {
			if f.v != "" {
				args = append(args, "--"+f.name, f.v)
			}
		}
		shown = append(shown, args...)
		// The tenant objects name simulators on loopback, over plain http.
		args = append(args, devenv.ManagerURLArgs...)
		args = append(args, "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--metrics-secure=false", "--health-probe-bind-address", "0")
		if p.pprof != "" {
			args = append(args, "--pprof-bind-address", p.pprof)
		}
		fmt.Printf("==> Starting the manager: %s\n", strings.Join(shown, " "))
		proc, err := devenv.Start("manager", filepath.Join(dir, name+".log"), env, p.managerBin, args...)
		if err != nil {
			return nil, err
		}
		cleanup.Defer(func() { proc.Stop(10 * time.Second) })
		m := &manager{proc: proc, port: port, args: shown}
		go func() {
			<-proc.Done()
			// A manager that stops unasked ends the run; one the bench stops (for the restart)
			// does not. Its own flag: a flag shared by both managers, cleared after the first one
			// stopped, could be read cleared by this goroutine, which runs after the exit.
			if !m.stopping.Load() {
				cancel()
			}
		}()
		return m, nil
	}
	m1, err := startManager("manager", p.workloadResync)
	if err != nil {
		return err
	}
	mgr := m1.proc
	r.managerArgs = m1.args

	tr, err := startTracker(ctx, cp.Config)
	if err != nil {
		return err
	}
	kube := cp.Client

	if p.applies > 0 {
		// On the idle operator: before the workload, after one apply that pays the first read of
		// the tenant. The users are deleted afterwards (deletionPolicy Delete), so that the
		// workload starts from the seeded tenant.
		fmt.Printf("==> Latency: 1 + %d sequential applies of one new CipherscaleUser on the idle operator\n", p.applies)
		if r.latencies, err = latencyStage(ctx, kube, tr, id, p.applies, p.latencyGap); err != nil {
			return managerErr(mgr, err)
		}
	}
	if r.pprofURL != "" {
		r.heapFiles = append(r.heapFiles, saveHeap(r.pprofURL, filepath.Join(dir, fmt.Sprintf("heap-%d-idle.pb.gz", p.n))))
	}
	stats0, err := control.Stats(ctx)
	if err != nil {
		return err
	}

	fmt.Printf("==> Creating %d CipherscaleUsers and %d CipherscaleGroupMemberships\n", len(w.users), len(w.memberships))
	objs := make([]client.Object, 0, len(w.users)+len(w.memberships))
	for _, u := range w.users {
		objs = append(objs, u)
	}
	for _, m := range w.memberships {
		objs = append(objs, m)
	}
	samples := startSampler(ctx, time.Second, func() int { c, _ := tr.state(); return c }, func() (int, error) {
		s, err := control.Stats(ctx)
		return s.Total, err
	})
	cpu0 := cpuSeconds(mgr.Cmd.Process.Pid)
	start := time.Now()
	if err := parallel(16, len(objs), func(i int) error { return kube.Create(ctx, objs[i]) }); err != nil {
		return managerErr(mgr, fmt.Errorf("creating objects: %w", err))
	}
	r.created = time.Since(start)
	wctx, wcancel := context.WithTimeout(ctx, p.readyLimit)
	last := -1
	at, err := tr.waitCount(wctx, len(objs), func(c int) {
		if step := max(1, len(objs)/10); c/step != last/step {
			fmt.Printf("    %d/%d Ready after %s\n", c, len(objs), time.Since(start).Round(time.Second))
			last = c
		}
	})
	wcancel()
	if err != nil {
		c, _ := tr.state()
		return managerErr(mgr, fmt.Errorf("%d of %d objects Ready when waiting stopped: %w", c, len(objs), err))
	}
	r.allReady = at.Sub(start)
	r.cpuStage1 = cpuSeconds(mgr.Cmd.Process.Pid) - cpu0
	series := samples.finish()
	statsReady, err := control.Stats(ctx)
	if err != nil {
		return err
	}
	r.stats1 = diff(statsReady, stats0)
	if r.pprofURL != "" {
		r.heapFiles = append(r.heapFiles, saveHeap(r.pprofURL, filepath.Join(dir, fmt.Sprintf("heap-%d-ready.pb.gz", p.n))))
	}
	fmt.Printf("    all Ready after %s (objects created in %s)\n", r.allReady.Round(time.Millisecond), r.created.Round(time.Millisecond))

	// The workload's manager is done: its counts and memory, then a restart with a short resync
	// for the steady state (and the memory of a manager that starts with every object there).
	if r.mismatch, err = settle(ctx, control, m1.port, statsAll(control)); err != nil {
		return err
	}
	r.rssKiB, r.cpuTotal = peakRSS(mgr.Cmd.Process.Pid), cpuSeconds(mgr.Cmd.Process.Pid)-cpu0
	m1.stopping.Store(true)
	mgr.Stop(30 * time.Second)
	atRestart, err := control.Stats(ctx)
	if err != nil {
		return err
	}
	m2, err := startManager("manager-steady", p.resync.String())
	if err != nil {
		return err
	}
	r.steadyArgs = m2.args
	fmt.Printf("==> Steady state: 1 resync interval to settle after the restart, then %d of %s\n", p.resyncs, p.resync)
	select {
	case <-time.After(p.resync):
	case <-ctx.Done():
		return managerErr(m2.proc, errors.New("the restarted manager stopped"))
	}
	before, err := control.Stats(ctx)
	if err != nil {
		return err
	}
	r.restart = diff(before, atRestart)
	select {
	case <-time.After(time.Duration(p.resyncs) * p.resync):
	case <-ctx.Done():
		return managerErr(m2.proc, errors.New("stopped during the steady state"))
	}
	stats2, err := control.Stats(ctx)
	if err != nil {
		return err
	}
	r.steady = diff(stats2, before)
	r.rssKiB2, r.cpu2 = peakRSS(m2.proc.Cmd.Process.Pid), cpuSeconds(m2.proc.Cmd.Process.Pid)
	r.readyAfterSteady, _ = tr.state()
	if r.pprofURL != "" {
		r.heapFiles = append(r.heapFiles, saveHeap(r.pprofURL, filepath.Join(dir, fmt.Sprintf("heap-%d-steady.pb.gz", p.n))))
	}
	sinceRestart := func() (simulator.Stats, error) {
		all, err := control.Stats(ctx)
		return diff(all, atRestart), err
	}
	mismatch2, err := settle(ctx, control, m2.port, sinceRestart)
	if err != nil {
		return err
	}
	r.mismatch = append(r.mismatch, mismatch2...)
	final, err := control.Stats(ctx)
	if err != nil {
		return err
	}
	r.all = final

	if p.isoUsers > 0 && p.isoRounds > 0 {
		fmt.Printf("==> Tenant isolation: %d rounds of %d users, alone and beside a tenant answering 429\n", p.isoRounds, p.isoUsers)
		iso, err := isolationStage(ctx, kube, tr, id, filepath.Join(root, "bin", "cipherscale-sim"), dir, p.isoUsers, p.isoRounds)
		if err != nil {
			return managerErr(m2.proc, fmt.Errorf("tenant isolation: %w", err))
		}
		r.isolation = &iso
	}
	if p.slowUsers > 0 && p.slowRounds > 0 {
		fmt.Printf("==> Slow tenant: %d rounds of %d users, alone and beside a tenant at %d request/s answering in %d ms, its %d objects each needing a profile write\n",
			p.slowRounds, p.slowUsers, slowRate, slowLatency, slowObjects)
		st, err := slowStage(ctx, kube, tr, id, filepath.Join(root, "bin", "cipherscale-sim"), dir, p.slowUsers, p.slowRounds)
		if err != nil {
			return managerErr(m2.proc, fmt.Errorf("slow tenant: %w", err))
		}
		r.slow = &st
	}
	if p.paced > 0 {
		fmt.Printf("==> One file at a time: %d new users, one kubectl apply per file, one after another\n", p.paced)
		pc, err := pacedStage(ctx, kube, tr, control, root, cp.Kubeconfig, dir, id, p.paced)
		if err != nil {
			return managerErr(m2.proc, fmt.Errorf("one file at a time: %w", err))
		}
		fmt.Printf("    %d create calls, applied in %s, all Ready %s after the last apply\n", pc.creates, pc.applied.Round(time.Millisecond), pc.lastLag.Round(time.Millisecond))
		r.paced = &pc
	}
	r.loadEnd = loadAvg()

	out := p.out
	if out == "" {
		out = filepath.Join(dir, fmt.Sprintf("report-%d.md", p.n))
	}
	svg, svgName := svgBeside(out)
	c := chart{title: fmt.Sprintf("mixed workload: N=%d (%d objects)", p.n, len(objs)), objects: len(objs), rateLimit: p.limit, bound: r.bound.total()}
	if p.limit > 0 {
		c.boundTime = float64(r.bound.total()) / p.limit
	}
	if err := writePlots(p, svg, c, series); err != nil {
		fmt.Printf("    no plot: %v\n", err)
	} else {
		r.svg = svgName
	}
	text := r.String()
	fmt.Print("\n" + text)
	for _, f := range []string{out, filepath.Join(dir, "report.md")} {
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("\nReport written to %s and %s\n", out, filepath.Join(dir, "report.md"))
	if len(r.mismatch) > 0 {
		return fmt.Errorf("the manager's metrics disagree with the simulator's statistics: %s", strings.Join(r.mismatch, "; "))
	}
	return nil
}

func managerErr(mgr *devenv.Process, err error) error {
	if mgr.Exited() {
		return fmt.Errorf("%w; the manager exited: %s", err, tail(mgr.Log(), 40))
	}
	return err
}

// seedCatalog creates the roles and groups the workload uses: Bench and Legacy roles and
// groups, and one Team group per block of 100 users.
func seedCatalog(ctx context.Context, c *devenv.SimControl, teams int) (ids, error) {
	var id ids
	role := func(name string, typ cipherscale.RoleType) (string, error) {
		var r cipherscale.Role
		err := c.Post(ctx, "/_sim/roles", map[string]string{"name": name, "type": string(typ)}, &r)
		return r.ID, err
	}
	group := func(name string) (string, error) {
		var g cipherscale.Group
		err := c.Post(ctx, "/_sim/groups", map[string]any{"name": name, "roles": []string{}}, &g)
		return g.ID, err
	}
	var errs []error
	var err error
	id.role, err = role("Bench", cipherscale.RoleTypeSupport)
	errs = append(errs, err)
	id.legacyRole, err = role("Legacy", cipherscale.RoleTypeAuditor)
	errs = append(errs, err)
	id.group, err = group("Bench")
	errs = append(errs, err)
	id.legacyGroup, err = group("Legacy")
	errs = append(errs, err)
	for k := range teams {
		g, err := group(fmt.Sprintf("Team %d", k))
		errs = append(errs, err)
		id.teams = append(id.teams, g)
	}
	return id, errors.Join(errs...)
}

// latencyStage applies one new CipherscaleUser at a time and measures the time from the create
// to the tracker seeing it Ready.
func latencyStage(ctx context.Context, kube client.Client, tr *tracker, id ids, n int, gap time.Duration) ([]time.Duration, error) {
	var out []time.Duration
	var made []client.Object
	for i := 0; i <= n; i++ {
		if i > 0 {
			// The operator is idle again: no create for longer than a stream's gap.
			select {
			case <-time.After(gap):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		u := &iamv1alpha1.CipherscaleUser{}
		u.Namespace, u.Name = namespace, fmt.Sprintf("latency-%03d", i)
		u.Spec = iamv1alpha1.CipherscaleUserSpec{
			Email:     fmt.Sprintf("latency-%03d@%s", i, emailDomain),
			FirstName: ptr("Latency"), LastName: ptr(strconv.Itoa(i)),
			Roles: &[]iamv1alpha1.ID{id.role}, Groups: &[]iamv1alpha1.ID{id.group},
		}
		start := time.Now()
		if err := kube.Create(ctx, u); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		at, err := tr.waitFor(wctx, u)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s not Ready within 30s: %w", u.Name, err)
		}
		made = append(made, u)
		if i > 0 { // the first apply pays the first read of the tenant
			out = append(out, at.Sub(start))
		}
	}
	for _, u := range made {
		if err := kube.Delete(ctx, u); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, u := range made {
		if err := waitGone(wctx, kube, u); err != nil {
			return nil, fmt.Errorf("deleting the latency users: %w", err)
		}
	}
	return out, nil
}

func waitGone(ctx context.Context, kube client.Client, o client.Object) error {
	for {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(o), o); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("%s still there: %w", o.GetName(), ctx.Err())
		}
	}
}

// saveHeap writes the manager's heap profile (after a GC) to path; it needs a manager built with
// a pprof endpoint (-pprof). It returns path, or what went wrong.
func saveHeap(url, path string) string {
	resp, err := http.Get(url + "/debug/pprof/heap?gc=1") //nolint:gosec // loopback
	if err != nil {
		return path + ": " + err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return path + ": " + err.Error()
	}
	return path
}

// parallel runs fn(0..n-1) on k goroutines and returns the first error.
func parallel(k, n int, fn func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty", "--tags").Output()
	if err != nil {
		return "unknown (git describe failed)"
	}
	return strings.TrimSpace(string(out))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// managerDefaults reads the defaults the manager binary declares for its flags from its -h.
func managerDefaults(bin string) (map[string]string, error) {
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2 depending on the flag package
	defs := map[string]string{}
	var name string
	for _, line := range strings.Split(string(out), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "-") {
			name = strings.TrimPrefix(strings.Fields(t)[0], "-")
			continue
		}
		if i := strings.LastIndex(t, "(default "); i >= 0 && name != "" {
			defs[name] = strings.Trim(strings.TrimSuffix(t[i+len("(default "):], ")"), `"`)
		}
	}
	for _, f := range []string{"max-concurrent-reconciles", "create-batch-window"} {
		if _, ok := defs[f]; !ok {
			return nil, fmt.Errorf("%s -h does not give a default for --%s:\n%s", bin, f, out)
		}
	}
	return defs, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type manager struct {
	proc *devenv.Process
	port int
	args []string
	// stopping: the bench is stopping it.
	stopping atomic.Bool
}

// statsAll returns a function reading the simulator's statistics since the manager started.
func statsAll(c *devenv.SimControl) func() (simulator.Stats, error) {
	return func() (simulator.Stats, error) { return c.Stats(context.Background()) }
}

// settle compares a quiet manager's request metrics with the simulator's statistics, reading
// both again a few times if a call was in flight between the two reads.
func settle(ctx context.Context, c *devenv.SimControl, port int, stats func() (simulator.Stats, error)) ([]string, error) {
	var mismatch []string
	for range 5 {
		metrics, err := scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return nil, err
		}
		s, err := stats()
		if err != nil {
			return nil, err
		}
		if mismatch = agreement(metrics, s); len(mismatch) == 0 {
			return nil, nil
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return mismatch, nil
}
