package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// The fleet stage (issue 22 item 5): T tenants of U users each, every tenant a simulator of its
// own (in this process, on its own port) and a CipherscaleTenant in its own namespace, with the
// mixed workload of U users in it (half adopted, half new, one membership per 100 users). One
// more tenant, the probe, measures the isolation figure: P new users of it applied on the idle
// fleet, beside the fleet at work, and on the idle fleet again.

const (
	fleetTenantName = "tenant"
	probeNamespace  = "fleet-probe"
)

func fleetNamespace(i int) string { return fmt.Sprintf("fleet-%03d", i) }

// fleetBurst is the spec.burst of a fleet tenant whose simulator allows limit requests a second
// with a burst of the same: -fleet-burst, or half the simulator's burst when that is 0.
func fleetBurst(p params, limit float64) int {
	if p.fleetBurst > 0 {
		return p.fleetBurst
	}
	return max(1, int(math.Ceil(max(1, limit)/2)))
}

type fleetTenant struct {
	ns    string
	sim   *simulator.Server
	w     *workload
	bound bound
	calls simulator.Stats // from the first create to all Ready
}

type fleetResult struct {
	p             params
	commit        string
	started       time.Time
	loadStart     string
	loadEnd       string
	goVersion     string
	cpus          int
	managerArgs   []string
	tenants       []*fleetTenant
	objects       int
	created       time.Duration
	allReady      time.Duration
	cpu           float64 // manager CPU from the first create to all Ready
	cpuAll        float64 // manager CPU over its life
	rssKiB        int
	calls         simulator.Stats
	probeAlone    []time.Duration
	probeWith     time.Duration
	probeWithDone int // fleet objects Ready when the probe batch beside the fleet was Ready
	mismatch      []string
	svg           string
	tenantsReady  time.Duration
}

func runFleet(ctx context.Context, root, dir string, p params) error {
	r := &fleetResult{p: p, commit: gitDescribe(root), started: time.Now().UTC(), loadStart: loadAvg(), goVersion: runtime.Version(), cpus: runtime.NumCPU()}
	e, stop, err := startStage(ctx, root, dir, "fleet", p)
	defer stop()
	if err != nil {
		return err
	}
	ctx, kube, tr := e.ctx, e.cp.Client, e.tr
	r.managerArgs = e.args

	fmt.Printf("==> Fleet: %d tenants of %d users, each its own simulator (%s latency, %g requests/s) and CipherscaleTenant\n", p.fleetTenants, p.fleetUsers, p.latency, p.fleetLimit)
	var sims []*simulator.Server
	newTenant := func(ns string, limit float64) (*simulator.Server, ids, error) {
		sim, url, stopSim, err := startSim(0, 0)
		if err != nil {
			return nil, ids{}, err
		}
		e.cleanup.Defer(stopSim)
		id, err := seedCatalogDirect(sim, blocks(p.fleetUsers))
		if err != nil {
			return nil, id, err
		}
		if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, id, err
		}
		secret := "tenant-key"
		if err := kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret,
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: iamv1alpha1.KindCipherscaleTenant + "/" + fleetTenantName}},
			StringData: map[string]string{"api-key": apiKey}}); err != nil {
			return nil, id, err
		}
		// The tenant's burst is below the simulator's (fleetBurst): a client that spends the
		// API's whole bucket at once leaves it nothing for the jitter between the client's
		// grants and the API's arrivals, and earns a 429 at each early one.
		rps := int32(math.Ceil(limit))
		burst := int32(fleetBurst(p, limit))
		t := &iamv1alpha1.CipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fleetTenantName},
			Spec: iamv1alpha1.CipherscaleTenantSpec{
				APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: secret},
				TenantSettings: iamv1alpha1.TenantSettings{
					URL: url, RequestsPerSecond: &rps, Burst: &burst,
					Privileged:    &iamv1alpha1.PrivilegedSpec{NamespaceSelector: &metav1.LabelSelector{}},
					RemovalBudget: &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(0))},
				},
			},
		}
		return sim, id, kube.Create(ctx, t)
	}
	for i := range p.fleetTenants {
		ns := fleetNamespace(i)
		sim, id, err := newTenant(ns, p.fleetLimit)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", ns, err)
		}
		w := newWorkload(p.fleetUsers, id)
		for _, s := range w.seeds {
			if _, err := sim.AddUser(s); err != nil {
				return fmt.Errorf("seeding %s: %w", ns, err)
			}
		}
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: fleetTenantName}
		for _, u := range w.users {
			u.Namespace, u.Spec.TenantRef = ns, ref
		}
		for _, m := range w.memberships {
			m.Namespace, m.Spec.TenantRef = ns, ref
		}
		ft := &fleetTenant{ns: ns, sim: sim, w: w, bound: w.bound()}
		r.tenants = append(r.tenants, ft)
		r.objects += len(w.users) + len(w.memberships)
		sims = append(sims, sim)
	}
	probe, probeID, err := newTenant(probeNamespace, p.limit)
	if err != nil {
		return fmt.Errorf("probe tenant: %w", err)
	}
	// Latency and limits once seeded (seeding goes through the Go API, not the rate limit).
	for _, s := range append(append([]*simulator.Server{}, sims...), probe) {
		if p.latency > 0 {
			s.SetFaults([]simulator.FaultRule{{LatencyMs: int(p.latency / time.Millisecond)}})
		}
	}
	for _, s := range sims {
		if p.fleetLimit > 0 {
			s.SetLimit(p.fleetLimit, int(max(1, p.fleetLimit)))
		}
	}
	if p.limit > 0 {
		probe.SetLimit(p.limit, int(max(1, p.limit)))
	}
	t0 := time.Now()
	if err := poll(ctx, 5*time.Minute, func() (bool, error) {
		var list iamv1alpha1.CipherscaleTenantList
		if err := kube.List(ctx, &list); err != nil {
			return false, err
		}
		ready := 0
		for i := range list.Items {
			if ok, _ := tenantReady(ctx, kube, &list.Items[i]); ok {
				ready++
			}
		}
		return ready == p.fleetTenants+1, nil
	}); err != nil {
		return managerErr(e.mgr, fmt.Errorf("the fleet's tenants not Ready: %w", err))
	}
	r.tenantsReady = time.Since(t0)
	fmt.Printf("    %d tenants Ready after %s\n", p.fleetTenants+1, r.tenantsReady.Round(time.Millisecond))

	probeBatch := func(name string) (time.Duration, error) {
		return tenantBatch(ctx, kube, tr, probeID, probeNamespace, name, fleetTenantName, p.fleetProbe)
	}
	if p.fleetProbe > 0 {
		fmt.Printf("==> Probe: %d new users of the probe tenant on the idle fleet\n", p.fleetProbe)
		d, err := probeBatch("alone-before")
		if err != nil {
			return managerErr(e.mgr, err)
		}
		r.probeAlone = append(r.probeAlone, d)
	}

	before := make([]simulator.Stats, len(sims))
	for i, s := range sims {
		before[i] = s.Stats()
	}
	fleetReady := func() int {
		c, _ := tr.state()
		return c - tr.countNamespace(probeNamespace)
	}
	fleetCalls := func() (int, error) { return sumStats(sims).Total, nil }
	var objs []client.Object
	for _, t := range r.tenants {
		for _, u := range t.w.users {
			objs = append(objs, u)
		}
		for _, m := range t.w.memberships {
			objs = append(objs, m)
		}
	}
	fmt.Printf("==> Creating %d objects in %d tenants\n", len(objs), len(r.tenants))
	samples := startSampler(ctx, time.Second, fleetReady, fleetCalls)
	cpu0 := cpuSeconds(e.mgr.Cmd.Process.Pid)
	start := time.Now()
	type probeOut struct {
		d    time.Duration
		done int
		err  error
	}
	probeCh := make(chan probeOut, 1)
	if p.fleetProbe > 0 {
		go func() {
			// Beside the fleet at work: a few seconds into the fleet's creates.
			select {
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
			fmt.Printf("    probe: %d new users of the probe tenant beside the fleet at work\n", p.fleetProbe)
			d, err := probeBatch("beside")
			probeCh <- probeOut{d, fleetReady(), err}
		}()
	}
	if err := parallel(16, len(objs), func(i int) error { return kube.Create(ctx, objs[i]) }); err != nil {
		return managerErr(e.mgr, fmt.Errorf("creating objects: %w", err))
	}
	r.created = time.Since(start)
	fmt.Printf("    objects created in %s\n", r.created.Round(time.Millisecond))
	// The fleet's objects and, once its batch is applied, the probe's: wait for the fleet's.
	last := -1
	if err := poll(ctx, p.readyLimit, func() (bool, error) {
		c := fleetReady()
		if step := max(1, r.objects/10); c/step != last/step {
			fmt.Printf("    %d/%d fleet objects Ready after %s\n", c, r.objects, time.Since(start).Round(time.Second))
			last = c
		}
		return c >= r.objects, nil
	}); err != nil {
		return managerErr(e.mgr, fmt.Errorf("%d of %d fleet objects Ready: %w", fleetReady(), r.objects, err))
	}
	r.allReady = time.Since(start)
	r.cpu = cpuSeconds(e.mgr.Cmd.Process.Pid) - cpu0
	series := samples.finish()
	fmt.Printf("    all %d fleet objects Ready after %s\n", r.objects, r.allReady.Round(time.Millisecond))
	for i, t := range r.tenants {
		t.calls = diff(t.sim.Stats(), before[i])
	}
	r.calls = diffSum(sumStats(sims), before)
	if p.fleetProbe > 0 {
		po := <-probeCh
		if po.err != nil {
			return managerErr(e.mgr, fmt.Errorf("probe beside the fleet: %w", po.err))
		}
		r.probeWith, r.probeWithDone = po.d, po.done
		fmt.Printf("==> Probe: %d new users of the probe tenant on the idle fleet, again\n", p.fleetProbe)
		d, err := probeBatch("alone-after")
		if err != nil {
			return managerErr(e.mgr, err)
		}
		r.probeAlone = append(r.probeAlone, d)
	}
	all := append(append([]*simulator.Server{}, sims...), probe)
	if r.mismatch, err = settle(ctx, nil, e.port, func() (simulator.Stats, error) { return sumStats(all), nil }); err != nil {
		return err
	}
	r.rssKiB, r.cpuAll = peakRSS(e.mgr.Cmd.Process.Pid), cpuSeconds(e.mgr.Cmd.Process.Pid)
	r.loadEnd = loadAvg()

	out := p.fleetOut
	if out == "" {
		out = filepath.Join(dir, fmt.Sprintf("report-fleet-%dx%d.md", p.fleetTenants, p.fleetUsers))
	}
	svg, name := svgBeside(out)
	boundSum, boundTime := r.boundSum()
	if err := writePlots(p, svg, chart{
		title:   fmt.Sprintf("fleet: %d tenants x %d users (%d objects)", p.fleetTenants, p.fleetUsers, r.objects),
		objects: r.objects, rateLimit: p.fleetLimit * float64(p.fleetTenants),
		bound: boundSum, boundTime: boundTime, boundLabel: ", summed over the tenants",
	}, series); err != nil {
		fmt.Printf("    no plot: %v\n", err)
	} else {
		r.svg = name
	}
	text := r.String()
	fmt.Print("\n" + text)
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nReport written to %s (plot %s)\n", out, svg)
	if len(r.mismatch) > 0 {
		return fmt.Errorf("the manager's metrics disagree with the simulators' statistics: %s", strings.Join(r.mismatch, "; "))
	}
	return nil
}

// seedCatalogDirect is seedCatalog through the simulator's Go API.
func seedCatalogDirect(s *simulator.Server, teams int) (ids, error) {
	var id ids
	var errs []error
	role := func(name string, typ cipherscale.RoleType) string {
		r, err := s.AddRole(simulator.RoleSeed{Name: name, Type: typ})
		errs = append(errs, err)
		return r.ID
	}
	group := func(name string) string {
		g, err := s.AddGroup(simulator.GroupSeed{Name: name, Roles: []string{}})
		errs = append(errs, err)
		return g.ID
	}
	id.role, id.legacyRole = role("Bench", cipherscale.RoleTypeSupport), role("Legacy", cipherscale.RoleTypeAuditor)
	id.group, id.legacyGroup = group("Bench"), group("Legacy")
	for k := range teams {
		id.teams = append(id.teams, group(fmt.Sprintf("Team %d", k)))
	}
	return id, errors.Join(errs...)
}

// diffSum subtracts the sum of several simulators' earlier statistics.
func diffSum(now simulator.Stats, before []simulator.Stats) simulator.Stats {
	var b simulator.Stats
	by := map[string]int{}
	for _, s := range before {
		for _, r := range s.Requests {
			by[fmt.Sprintf("%s|%d", r.Route, r.Status)] += r.Count
		}
	}
	for k, c := range by {
		route, status, _ := strings.Cut(k, "|")
		st, _ := strconv.Atoi(status)
		b.Requests = append(b.Requests, simulator.RouteStat{Route: route, Status: st, Count: c})
		b.Total += c
	}
	return diff(now, b)
}

// boundSum is the sum of the tenants' lower bounds, and the time the slowest of them takes at
// the fleet's limit (the tenants run side by side).
func (r *fleetResult) boundSum() (int, float64) {
	sum, worst := 0, 0
	for _, t := range r.tenants {
		sum += t.bound.total()
		worst = max(worst, t.bound.total())
	}
	if r.p.fleetLimit <= 0 {
		return sum, 0
	}
	return sum, float64(worst) / r.p.fleetLimit
}

func (r *fleetResult) String() string {
	var b strings.Builder
	p := r.p
	pr := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	boundSum, boundTime := r.boundSum()
	t0 := r.tenants[0]
	pr("# cipherscale-operator benchmark: a fleet of %d tenants of %d users\n\n", p.fleetTenants, p.fleetUsers)
	pr("- commit: `%s` (git describe)\n", r.commit)
	pr("- started: %s; %s; %d CPUs\n", r.started.Format(time.RFC3339), r.goVersion, r.cpus)
	pr("- load average (1, 5, 15 min): %s at the start, %s at the end\n", r.loadStart, r.loadEnd)
	if loaded(r.loadStart, r.cpus) || loaded(r.loadEnd, r.cpus) {
		pr("- **the machine was busy with other work during this run** (load average at or above half the CPUs): times and CPU seconds are pessimistic\n")
	}
	pr("- command: `%s`\n\n", p.command)
	if r.svg != "" {
		pr("![objects Ready, API calls per second and API calls so far over time](%s)\n\n", r.svg)
	}

	pr("## Settings\n\n| setting | value | source |\n|---|---|---|\n")
	pr("| tenants | %d, each a simulator of its own (in the bench's process, its own port) and a CipherscaleTenant `%s` in its own namespace (fleet-000 ...), its Secret consenting to it | -fleet-tenants |\n", p.fleetTenants, fleetTenantName)
	pr("| users per tenant | %d CipherscaleUsers, the mixed workload of the main report in each tenant: %d adopted (seeded), %d new; each declares firstName, lastName, one role and one group | -fleet-users |\n", p.fleetUsers, t0.bound.adopted, t0.bound.newUsers)
	pr("| memberships per tenant | %s | workload |\n", t0.w.membershipCounts())
	pr("| objects | %d in all (%d per tenant) | |\n", r.objects, r.objects/len(r.tenants))
	pr("| each tenant's API | %s latency added to every request; %s | -latency, -fleet-limit |\n", p.latency, limitText(p.fleetLimit))
	pr("| each CipherscaleTenant | spec.requestsPerSecond %d (the simulator's limit), spec.burst %d (the simulator's burst is %d; the probe's: %d of %d); spec.privileged: every namespace (its own); spec.removalBudget.perHour=0; other settings the CRD's defaults (resyncInterval 10m) | -fleet-limit, -fleet-burst |\n",
		int(math.Ceil(p.fleetLimit)), fleetBurst(p, p.fleetLimit), int(max(1, p.fleetLimit)), fleetBurst(p, p.limit), int(max(1, p.limit)))
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
	pr("| probe tenant | one more CipherscaleTenant (namespace %s) at %s, %s latency: %d new users (profile, one role, one group) applied on the idle fleet, a few seconds after the fleet's creates start, and on the idle fleet again (0: none) | -fleet-probe, -limit |\n\n", probeNamespace, limitText(p.limit), p.latency, p.fleetProbe)

	pr("## Figures\n\n| figure | measured | target | met |\n|---|---|---|---|\n")
	ratio := float64(r.calls.Total) / float64(boundSum)
	pr("| API calls of the %d tenants, first create to all Ready / sum of the tenants' lower bounds | %d / %d = %.3f | 1.05 (issue 22) | %s |\n", len(r.tenants), r.calls.Total, boundSum, ratio, met(ratio <= 1.05))
	var ratios []float64
	for _, t := range r.tenants {
		ratios = append(ratios, float64(t.calls.Total)/float64(t.bound.total()))
	}
	slices.Sort(ratios)
	pr("| per tenant, calls / its bound: min, median, max | %.3f, %.3f, %.3f | | |\n", ratios[0], ratios[len(ratios)/2], ratios[len(ratios)-1])
	pr("| 429 answers | %d | | |\n", countStatus(r.calls, http.StatusTooManyRequests))
	pr("| time from the first create to all %d fleet objects Ready | %s (objects created in %s) | | |\n", r.objects, r.allReady.Round(time.Millisecond), r.created.Round(time.Millisecond))
	if boundTime > 0 {
		pr("| time / the bound's time (the largest tenant bound, %d calls, at %g/s: %.1f s; the tenants run side by side) | %.2f | | |\n", boundSum/len(r.tenants), p.fleetLimit, boundTime, r.allReady.Seconds()/boundTime)
	}
	pr("| manager peak resident memory (VmHWM) over the run | %.1f MiB | 256 MiB (issue 22) | %s |\n", float64(r.rssKiB)/1024, met(float64(r.rssKiB)/1024 <= 256))
	pr("| manager CPU (user+system), first create to all Ready | %.1f s = %.2f s per tenant | | |\n", r.cpu, r.cpu/float64(len(r.tenants)))
	pr("| manager CPU over its life (tenants Ready, probes, workload) | %.1f s | | |\n", r.cpuAll)
	pr("| the %d tenants Ready (before any object) | after %s | | |\n", len(r.tenants)+1, r.tenantsReady.Round(time.Millisecond))
	if len(r.probeAlone) > 0 {
		best := slices.Min(r.probeAlone)
		pr("| isolation: %d new users of the probe tenant beside the fleet at work / best alone (idle fleet, before and after) | %s / %s = %.2f (alone: %s) | 1.2 (issue 22 item 2's figure) | %s |\n",
			p.fleetProbe, r.probeWith.Round(time.Millisecond), best.Round(time.Millisecond), float64(r.probeWith)/float64(best), durs(r.probeAlone), met(float64(r.probeWith)/float64(best) <= 1.2))
		pr("| fleet objects Ready when the probe's batch beside the fleet was Ready | %d of %d (%s) | | |\n", r.probeWithDone, r.objects, map[bool]string{true: "the fleet was at work throughout the batch", false: "the fleet was done before the batch was: only partly beside it"}[r.probeWithDone < r.objects])
	}
	if len(r.mismatch) == 0 {
		pr("| cipherscale_api_requests_total agrees with the simulators' statistics, per route and status | yes (checked) | | |\n\n")
	} else {
		pr("| cipherscale_api_requests_total agrees with the simulators' statistics | **no**: %s | | |\n\n", strings.Join(r.mismatch, "; "))
	}
	pr("The lower bound of each tenant is the main report's, term by term (its first read of the tenant included: the fleet's objects make it). Tenant fleet-000: %s = %d.\n\n", t0.bound.formula(), t0.bound.total())
	pr("The isolation figure here is one batch beside the fleet, not alternated rounds: the fleet is busy only once. It measures the manager's shared workers, queues and CPU (2 CPUs shared by the manager, kube-apiserver, etcd and the bench with its 101 simulators), not a tenant's rate limit: the probe has its own.\n\n")
	pr("## Calls of the %d tenants by route and status, first create to all Ready\n\n| route | status | calls |\n|---|---|---|\n", len(r.tenants))
	for _, s := range sortedStats(r.calls) {
		pr("| %s | %d | %d |\n", s.Route, s.Status, s.Count)
	}
	return b.String()
}

func durs(d []time.Duration) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = x.Round(time.Millisecond).String()
	}
	return strings.Join(s, ", ")
}

// tenantBatch applies n users of a CipherscaleTenant in its namespace ns (each with a profile,
// the Bench role and group), named prefix-i, and returns the time from the first create to the
// last Ready seen on a watch.
func tenantBatch(ctx context.Context, kube client.Client, tr *tracker, id ids, ns, prefix, tenant string, n int) (time.Duration, error) {
	objs := make([]client.Object, n)
	for i := range objs {
		objs[i] = &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%03d", prefix, i)},
			Spec: iamv1alpha1.CipherscaleUserSpec{
				Email:     fmt.Sprintf("%s-%s-%03d@%s", ns, prefix, i, emailDomain),
				FirstName: ptr("Probe"), LastName: ptr(strconv.Itoa(i)),
				Roles: &[]iamv1alpha1.ID{id.role}, Groups: &[]iamv1alpha1.ID{id.group},
				TenantRef: &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: tenant},
			},
		}
	}
	return createAndWait(ctx, kube, tr, objs, 10*time.Minute)
}
