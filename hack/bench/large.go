package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// The large-tenant stage (issue 22 item 4): a tenant of L users (seeded pending, no names, no
// roles, no groups), D of them declared by CipherscaleUsers in namespace default and adopted,
// each declaring a firstName and lastName (one profile write each) unless -large-profile=false;
// then the steady state with a short resyncInterval between full reads.

type largeResult struct {
	p           params
	commit      string
	started     time.Time
	loadStart   string
	loadEnd     string
	goVersion   string
	cpus        int
	managerArgs []string
	limit       float64
	bound       int
	pages       int
	writes      int
	created     time.Duration
	allReady    time.Duration
	calls       simulator.Stats
	steady      simulator.Stats
	settleCalls simulator.Stats
	readyEnd    int
	cpu         float64
	cpuAll      float64
	rssKiB      int
	rssReady    int
	mismatch    []string
	svg         string
	failure     string
}

func largeEmail(i int) string { return fmt.Sprintf("large-%d@%s", i, emailDomain) }

func runLarge(ctx context.Context, root, dir string, p params) error {
	limit := p.largeLimit
	if limit == 0 {
		limit = p.limit
	}
	r := &largeResult{p: p, commit: gitDescribe(root), started: time.Now().UTC(), loadStart: loadAvg(), goVersion: runtime.Version(), cpus: runtime.NumCPU(), limit: limit}
	e, stop, err := startStage(ctx, root, dir, "large", p)
	defer stop()
	if err != nil {
		return err
	}
	ctx, kube, tr := e.ctx, e.cp.Client, e.tr
	r.managerArgs = e.args

	fmt.Printf("==> Large tenant: %d users seeded, %d declared\n", p.largeUsers, p.largeDeclared)
	sim, url, stopSim, err := startSim(0, 0)
	if err != nil {
		return err
	}
	e.cleanup.Defer(stopSim)
	if err := sim.SeedUsers(p.largeUsers, "large-%d@"+emailDomain); err != nil {
		return err
	}
	if p.latency > 0 {
		sim.SetFaults([]simulator.FaultRule{{LatencyMs: int(p.latency / time.Millisecond)}})
	}
	if limit > 0 {
		sim.SetLimit(limit, int(max(1, limit)))
	}
	rps := int32(math.Ceil(limit))
	if err := e.cp.CreateDefaultTenant(ctx, url, apiKey, func(t *iamv1alpha1.ClusterCipherscaleTenant) {
		devenv.TrustAll(t)
		if limit > 0 {
			t.Spec.RequestsPerSecond = &rps
		}
		t.Spec.RemovalBudget = &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(0))}
	}); err != nil {
		return err
	}
	def := &iamv1alpha1.ClusterCipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if err := poll(ctx, 5*time.Minute, func() (bool, error) { return tenantReady(ctx, kube, def) }); err != nil {
		return managerErr(e.mgr, fmt.Errorf("ClusterCipherscaleTenant/default not Ready: %w", err))
	}

	objs := make([]client.Object, p.largeDeclared)
	step := max(1, p.largeUsers/max(1, p.largeDeclared))
	for k := range objs {
		i := 1 + k*step
		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("large-%06d", i)},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: largeEmail(i)},
		}
		if p.largeProfile {
			u.Spec.FirstName, u.Spec.LastName = ptr("Large"), ptr(strconv.Itoa(i))
			r.writes++
		}
		objs[k] = u
	}
	r.pages = max(1, (p.largeUsers+cipherscale.MaxCreateBatch-1)/cipherscale.MaxCreateBatch)
	r.bound = r.pages + r.writes
	before := sim.Stats()
	fmt.Printf("==> Creating %d CipherscaleUsers\n", len(objs))
	samples := startSampler(ctx, time.Second, func() int { c, _ := tr.state(); return c }, func() (int, error) { return sim.Stats().Total, nil })
	cpu0 := cpuSeconds(e.mgr.Cmd.Process.Pid)
	start := time.Now()
	if err := parallel(16, len(objs), func(i int) error { return kube.Create(ctx, objs[i]) }); err != nil {
		return managerErr(e.mgr, fmt.Errorf("creating objects: %w", err))
	}
	r.created = time.Since(start)
	fmt.Printf("    objects created in %s\n", r.created.Round(time.Millisecond))
	at, werr := waitReady(ctx, tr, len(objs), start, p.readyLimit)
	series := samples.finish()
	r.calls = diff(sim.Stats(), before)
	r.cpu = cpuSeconds(e.mgr.Cmd.Process.Pid) - cpu0
	r.rssReady = peakRSS(e.mgr.Cmd.Process.Pid)
	out := p.largeOut
	if out == "" {
		out = filepath.Join(dir, fmt.Sprintf("report-large-%d.md", p.largeUsers))
	}
	svg, name := svgBeside(out)
	boundTime := 0.0
	if limit > 0 {
		boundTime = float64(r.bound) / limit
	}
	if werr != nil {
		// Report what was measured: a refused read is a figure too.
		r.failure = managerErr(e.mgr, werr).Error()
		fmt.Printf("    %s\n", r.failure)
	} else {
		r.allReady = at.Sub(start)
		fmt.Printf("    all Ready after %s\n", r.allReady.Round(time.Millisecond))
	}
	if err := writePlots(p, svg, chart{
		title:   fmt.Sprintf("large tenant: %d users, %d declared", p.largeUsers, p.largeDeclared),
		objects: len(objs), rateLimit: limit, bound: r.bound, boundTime: boundTime,
	}, series); err != nil {
		fmt.Printf("    no plot: %v\n", err)
	} else {
		r.svg = name
	}

	if werr == nil && p.resyncs > 0 {
		// The steady state: every resync interval a read, incremental between full reads.
		if err := kube.Get(ctx, client.ObjectKeyFromObject(def), def); err != nil {
			return err
		}
		def.Spec.ResyncInterval = &metav1.Duration{Duration: p.resync}
		if err := kube.Update(ctx, def); err != nil {
			return err
		}
		fmt.Printf("==> Steady state: spec.resyncInterval %s; one interval to settle, then %d\n", p.resync, p.resyncs)
		s0 := sim.Stats()
		if err := sleep(ctx, p.resync); err != nil {
			return managerErr(e.mgr, err)
		}
		s1 := sim.Stats()
		r.settleCalls = diff(s1, s0)
		if err := sleep(ctx, time.Duration(p.resyncs)*p.resync); err != nil {
			return managerErr(e.mgr, err)
		}
		r.steady = diff(sim.Stats(), s1)
		r.readyEnd, _ = tr.state()
	}
	if r.mismatch, err = settle(ctx, nil, e.port, func() (simulator.Stats, error) { return sim.Stats(), nil }); err != nil {
		return err
	}
	r.rssKiB, r.cpuAll = peakRSS(e.mgr.Cmd.Process.Pid), cpuSeconds(e.mgr.Cmd.Process.Pid)
	r.loadEnd = loadAvg()
	text := r.String()
	fmt.Print("\n" + text)
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nReport written to %s (plot %s)\n", out, svg)
	if len(r.mismatch) > 0 {
		return fmt.Errorf("the manager's metrics disagree with the simulator's statistics: %s", strings.Join(r.mismatch, "; "))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the manager stopped: %w", ctx.Err())
	}
}

func (r *largeResult) String() string {
	var b strings.Builder
	p := r.p
	pr := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	pr("# cipherscale-operator benchmark: a tenant of %d users, %d declared\n\n", p.largeUsers, p.largeDeclared)
	pr("- commit: `%s` (git describe)\n", r.commit)
	pr("- started: %s; %s; %d CPUs\n", r.started.Format(time.RFC3339), r.goVersion, r.cpus)
	pr("- load average (1, 5, 15 min): %s at the start, %s at the end\n", r.loadStart, r.loadEnd)
	if loaded(r.loadStart, r.cpus) || loaded(r.loadEnd, r.cpus) {
		pr("- **the machine was busy with other work during this run** (load average at or above half the CPUs): times and CPU seconds are pessimistic\n")
	}
	pr("- command: `%s`\n\n", p.command)
	if r.failure != "" {
		pr("**Not all Ready**: %s\n\n", "see the figures and the end of this report")
	}
	if r.svg != "" {
		pr("![objects Ready, API calls per second and API calls so far over time](%s)\n\n", r.svg)
	}
	pr("## Settings\n\n| setting | value | source |\n|---|---|---|\n")
	pr("| tenant | %d users seeded in the simulator (in the bench's process): pending, no name, no role, no group, emails large-1 ... large-%d | -large-users |\n", p.largeUsers, p.largeUsers)
	what := "only its email: adopted as it is, no write"
	if p.largeProfile {
		what = "its email, firstName and lastName: adopted, one profile write each"
	}
	pr("| declared | %d CipherscaleUsers in namespace default, one every %d tenant users, each declaring %s | -large-declared, -large-profile |\n", p.largeDeclared, max(1, p.largeUsers/max(1, p.largeDeclared)), what)
	pr("| the tenant's API | %s latency added to every request; %s | -latency, -large-limit (0: -limit) |\n", p.latency, limitText(r.limit))
	pr("| ClusterCipherscaleTenant/default | spec.requestsPerSecond %d (the simulator's limit); spec.adoption and spec.privileged: every namespace; spec.removalBudget.perHour=0; resyncInterval the CRD's default (10m) until all are Ready, then %s; fullResyncInterval the CRD's default (1h) | -resync |\n", int(math.Ceil(r.limit)), p.resync)
	args := strings.Join(r.managerArgs, " ")
	if args == "" {
		args = "none: every flag at its shipped default"
	}
	pr("| manager flags | %s | -manager-args |\n", args)
	env := p.managerEnv
	if env == "" {
		env = "none added"
	}
	pr("| manager environment | %s | -manager-env |\n", env)
	pr("| steady state | once all are Ready, spec.resyncInterval is set to %s: one interval to settle, then %d intervals measured | -resync, -resyncs |\n\n", p.resync, p.resyncs)

	pr("## Figures\n\n| figure | measured | target | met |\n|---|---|---|---|\n")
	objects := p.largeDeclared
	if r.failure != "" {
		c := 0
		if r.readyEnd > 0 {
			c = r.readyEnd
		}
		pr("| objects Ready | **not all**: %s | all | **no** |\n", r.failure)
		_ = c
	} else {
		pr("| objects Ready | all %d | all | yes |\n", objects)
		pr("| time from the first create to all Ready | %s (objects created in %s) | | |\n", r.allReady.Round(time.Millisecond), r.created.Round(time.Millisecond))
		if r.limit > 0 {
			bt := float64(r.bound) / r.limit
			ratio := r.allReady.Seconds() / bt
			pr("| time / the bound's time (%d calls at %g/s = %.1f s) | %.3f | 1.10 (issue 22) | %s |\n", r.bound, r.limit, bt, ratio, met(ratio <= 1.10))
		}
	}
	ratio := float64(r.calls.Total) / float64(r.bound)
	pr("| API calls, first create to all Ready / lower bound (%d list pages + %d profile writes) | %d / %d = %.3f | | |\n", r.pages, r.writes, r.calls.Total, r.bound, ratio)
	pr("| 429 answers | %d | | |\n", countStatus(r.calls, http.StatusTooManyRequests))
	pr("| manager peak resident memory (VmHWM), when all were Ready | %.1f MiB | 512 MiB (issue 22) | %s |\n", float64(r.rssReady)/1024, met(float64(r.rssReady)/1024 <= 512))
	pr("| manager peak resident memory (VmHWM), at the end (steady state included) | %.1f MiB | 512 MiB | %s |\n", float64(r.rssKiB)/1024, met(float64(r.rssKiB)/1024 <= 512))
	pr("| manager CPU (user+system), first create to all Ready | %.1f s | | |\n", r.cpu)
	pr("| manager CPU over its life | %.1f s | | |\n", r.cpuAll)
	if r.failure == "" && p.resyncs > 0 {
		lists := r.steady.Count(cipherscale.RouteListUsers)
		per := float64(lists) / float64(p.resyncs)
		pr("| steady state: GET /tenants/users calls per resync interval (%d intervals of %s, between full reads) | %d / %d = %.1f | 3 (issue 22) | %s |\n", p.resyncs, p.resync, lists, p.resyncs, per, met(per <= 3))
		pr("| steady state: all calls; writes | %d; %d | ; 0 | %s |\n", r.steady.Total, writes(r.steady), met(writes(r.steady) == 0))
		pr("| objects Ready at the end of the steady state | %d of %d | all | %s |\n", r.readyEnd, objects, met(r.readyEnd == objects))
		pr("| the settling interval after the change of resyncInterval (not in the window) | %d calls, %d GET /tenants/users | | |\n", r.settleCalls.Total, r.settleCalls.Count(cipherscale.RouteListUsers))
	}
	if len(r.mismatch) == 0 {
		pr("| cipherscale_api_requests_total agrees with the simulator's statistics, per route and status | yes (checked) | | |\n\n")
	} else {
		pr("| cipherscale_api_requests_total agrees with the simulator's statistics | **no**: %s | | |\n\n", strings.Join(r.mismatch, "; "))
	}
	pr("The lower bound: one read of the tenant, ceil(%d/100) = %d list pages, plus one profile write per declared user whose name differs (%d). ", p.largeUsers, r.pages, r.writes)
	pr("The reader overlaps its pages by one user (the main report says why): a full read is %d pages.\n\n", listPages(p.largeUsers))
	pr("## Calls by route and status, first create to all Ready\n\n| route | status | calls |\n|---|---|---|\n")
	for _, s := range sortedStats(r.calls) {
		pr("| %s | %d | %d |\n", s.Route, s.Status, s.Count)
	}
	if r.failure == "" && p.resyncs > 0 {
		pr("\n## Steady state, %d intervals of %s\n\n| route | status | calls |\n|---|---|---|\n", p.resyncs, p.resync)
		for _, s := range sortedStats(r.steady) {
			pr("| %s | %d | %d |\n", s.Route, s.Status, s.Count)
		}
	}
	if r.failure != "" {
		pr("\n## Failure\n\n```\n%s\n```\n", r.failure)
	}
	return b.String()
}
