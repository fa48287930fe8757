package main

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// result is everything a run measured, with the settings it ran with.
type result struct {
	p           params
	commit      string
	goVersion   string
	cpus        int
	started     time.Time
	loadStart   string
	loadEnd     string
	defaults    map[string]string
	managerArgs []string

	w     *workload
	bound bound

	created          time.Duration
	allReady         time.Duration
	stats1           simulator.Stats // stage 1: from the manager's start to all Ready
	steady           simulator.Stats // the steady-state window
	all              simulator.Stats // everything, for the agreement check
	readyAfterSteady int
	latencies        []time.Duration
	rssKiB           int
	cpuStage1        float64
	cpuTotal         float64
	mismatch         []string
	steadyArgs       []string
	restart          simulator.Stats // the restarted manager's first resync interval
	rssKiB2          int
	cpu2             float64
	pprofURL         string
	heapFiles        []string
	isolation        *isolation
	paced            *paced
	slow             *slowTenant
	svg              string // the plot beside the report
}

// setting returns the value the manager ran with for a flag and where it came from.
func (r *result) setting(name string) (string, string) {
	for i := 0; i+1 < len(r.managerArgs); i++ {
		if r.managerArgs[i] == "--"+name {
			return r.managerArgs[i+1], fmt.Sprintf("passed (shipped default %s)", r.defaults[name])
		}
	}
	return r.defaults[name], "shipped default (flag not passed)"
}

func (r *result) String() string {
	var b strings.Builder
	p, bd := r.p, r.bound
	n := p.n
	objects := len(r.w.users) + len(r.w.memberships)
	pr := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	pr("# cipherscale-operator benchmark: N=%d, mixed workload\n\n", n)
	pr("- commit: `%s` (git describe)\n", r.commit)
	pr("- started: %s; %s; %d CPUs\n", r.started.Format(time.RFC3339), r.goVersion, r.cpus)
	pr("- load average (1, 5, 15 min): %s at the start, %s at the end\n", r.loadStart, r.loadEnd)
	if loaded(r.loadStart, r.cpus) || loaded(r.loadEnd, r.cpus) {
		pr("- **the machine was busy with other work during this run** (load average at or above half the CPUs): times and CPU seconds are pessimistic\n")
	}
	pr("- command: `%s`\n\n", p.command)
	if r.svg != "" {
		pr("![objects Ready, API calls per second and API calls so far, from the first create to all Ready](%s)\n\n", r.svg)
	}

	pr("## Settings\n\n| setting | value | source |\n|---|---|---|\n")
	pr("| N | %d CipherscaleUsers: %d adopted (already in the tenant, seeded through /_sim/users), %d new; each declares firstName, lastName, one role and one group (spec.groups) | -n |\n",
		n, bd.adopted, bd.newUsers)
	pr("| adopted users | seeded in four variants in turn: as declared; another firstName; no role and no group; another name, role and group (the Legacy ones). %d of %d need no write | workload |\n", bd.adoptedClean, bd.adopted)
	pr("| memberships | %s | workload |\n", r.w.membershipCounts())
	pr("| tenant before the run | %d users | workload |\n", len(r.w.seeds))
	for _, f := range []string{"max-concurrent-reconciles", "create-batch-window"} {
		v, src := r.setting(f)
		pr("| manager --%s | %s | %s |\n", f, v, src)
	}
	pr("| the default tenant and the manager, as started for the workload | %s | -qps, -limit, -burst, -workload-resync, -max-concurrent-reconciles, -create-batch-window |\n", strings.Join(r.managerArgs, " "))
	env := p.managerEnv
	if env == "" {
		env = "none added (Go defaults: GOGC=100, no GOMEMLIMIT)"
	}
	pr("| manager environment | %s | -manager-env |\n", env)
	pr("| steady state | once all are Ready, the manager is stopped and started again with the default tenant's spec.resyncInterval %s (%s); one interval to settle, then %d intervals measured | -resync, -resyncs |\n", p.resync, strings.Join(r.steadyArgs, " "), p.resyncs)
	pr("| API latency | %s added by the simulator to every API request | -latency |\n", p.latency)
	pr("| API limit | %s | -limit |\n", limitText(p.limit))
	pr("| latency applies | %d, one at a time, each a new user with a profile, one role and one group, each after %s with no create (the operator idle) | -applies, -latency-gap |\n", p.applies, p.latencyGap)
	pr("| slow tenant | %d users per batch, %d rounds, beside a CipherscaleTenant at %d request/s (burst 1) whose API answers in %d ms, %d objects each needing a profile write (0: not run) | -slow-users, -slow-rounds |\n", p.slowUsers, p.slowRounds, slowRate, slowLatency, slowObjects)
	pr("| one file at a time | %d new users, each with one group, one file and one kubectl apply process each, one after another, on the restarted manager after the isolation stage (0: not run) | -paced |\n", p.paced)
	pr("| tenant isolation | %d users per batch, %d rounds (0: not run) | -isolation-users, -isolation-rounds |\n\n", p.isoUsers, p.isoRounds)

	total := r.stats1.Total
	ratio := float64(total) / float64(bd.total())
	throttled := countStatus(r.stats1, 429) + countStatus(r.steady, 429)
	calls12 := r.stats1.Total + r.steady.Total
	share := 100 * float64(throttled) / math.Max(1, float64(calls12))
	steadyPer := float64(r.steady.Total) / float64(p.resyncs)
	steadyTarget := (n+99)/100 + 1

	pr("## Figures\n\n")
	pr("Targets are issue 14's, written as the formula and its value for this N; \"met\" compares the measured figure with it.\n\n")
	pr("| figure | measured | target (formula = value) | met |\n|---|---|---|---|\n")
	pr("| API calls to bring all %d objects to Ready | %d | | |\n", objects, total)
	pr("| calls / lower bound | %d / %d = %.3f | 1.05 x bound = %.0f | %s |\n", total, bd.total(), ratio, 1.05*float64(bd.total()), met(ratio <= 1.05))
	pr("| time from the first create to all Ready | %s (objects created in %s) | | |\n", r.allReady.Round(time.Millisecond), r.created.Round(time.Millisecond))
	if p.limit > 0 {
		ideal := time.Duration(float64(bd.total()) / p.limit * float64(time.Second))
		tr := r.allReady.Seconds() / ideal.Seconds()
		pr("| time / the bound's time (bound / limit = %d / %g per s) | %s / %s = %.3f | 1.10 x bound's time = %s | %s |\n",
			bd.total(), p.limit, r.allReady.Round(time.Millisecond), ideal.Round(time.Millisecond), tr, (ideal * 11 / 10).Round(time.Millisecond), met(tr <= 1.10))
	}
	pr("| 429 answers, until all Ready and in the steady state | %d of %d calls (%.2f%%) | 0.5%% of calls | %s |\n", throttled, calls12, share, met(share <= 0.5))
	pr("| steady state: calls per resync interval (%d calls in %d intervals) | %.1f | ceil(N/100)+1 = %d | %s |\n", r.steady.Total, p.resyncs, steadyPer, steadyTarget, met(steadyPer <= float64(steadyTarget)))
	pr("| steady state: write calls | %d | 0 | %s |\n", writes(r.steady), met(writes(r.steady) == 0))
	pr("| objects Ready at the end of the steady state | %d of %d | all | %s |\n", r.readyAfterSteady, objects, met(r.readyAfterSteady == objects))
	memTarget := func(kib int) string {
		if n >= 10000 {
			return fmt.Sprintf("128 MiB at N=10,000 | %s", met(float64(kib)/1024 <= 128))
		}
		return "(128 MiB at N=10,000) | "
	}
	pr("| manager peak resident memory (VmHWM), latency stage and workload | %.1f MiB | %s |\n", float64(r.rssKiB)/1024, memTarget(r.rssKiB))
	pr("| restarted manager's peak resident memory (VmHWM): start with every object present, steady state | %.1f MiB | %s |\n", float64(r.rssKiB2)/1024, memTarget(r.rssKiB2))
	pr("| manager CPU (user+system) from the first create to all Ready | %.1f s | | |\n", r.cpuStage1)
	pr("| restarted manager's CPU (user+system): start, settle, steady state | %.1f s | | |\n", r.cpu2)
	if len(r.latencies) > 0 {
		med, p99, mx := percentile(r.latencies, 0.5), percentile(r.latencies, 0.99), percentile(r.latencies, 1)
		pr("| one new user on the idle operator, create to Ready: median | %s | 250ms | %s |\n", med.Round(time.Millisecond), met(med < 250*time.Millisecond))
		pr("| same, p99 (nearest rank over %d) | %s | 500ms | %s |\n", len(r.latencies), p99.Round(time.Millisecond), met(p99 < 500*time.Millisecond))
		pr("| same, max | %s | | |\n", mx.Round(time.Millisecond))
	}
	if iso := r.isolation; iso != nil {
		pr("| tenant isolation: best time of %d users of the default tenant beside a tenant answering 429 / best time alone (%d rounds each, alternated) | %s / %s = %.2f | 1.2 (issue 11) | %s |\n",
			iso.n, iso.rounds, slices.Min(iso.with).Round(time.Millisecond), slices.Min(iso.alone).Round(time.Millisecond), iso.ratio(), met(iso.ratio() <= 1.2))
	}
	if st := r.slow; st != nil {
		pr("| slow tenant: best time of %d users of the default tenant beside the slow tenant at work / best time alone (%d rounds each, alternated) | %s / %s = %.2f | 1.2 (issue 22) | %s |\n",
			st.n, st.rounds, slices.Min(st.with).Round(time.Millisecond), slices.Min(st.alone).Round(time.Millisecond), st.ratio(), met(st.ratio() <= 1.2))
	}
	if pc := r.paced; pc != nil {
		pr("| one file at a time: create calls for %d users applied by one kubectl per file (%s a file) | %d (bound ceil(%d/100) = %d) | 4 (issue 22) | %s |\n",
			pc.n, (pc.applied / time.Duration(pc.n)).Round(time.Millisecond), pc.creates, pc.n, (pc.n+99)/100, met(pc.creates <= 4))
	}
	if len(r.mismatch) == 0 {
		pr("| cipherscale_api_requests_total of each manager agrees with the simulator's statistics of its lifetime, per route and status (%d calls in all) | yes (checked) | | |\n\n", r.all.Total)
	} else {
		pr("| cipherscale_api_requests_total agrees with the simulator's statistics | **no**: %s | | |\n\n", strings.Join(r.mismatch, "; "))
	}

	pr("## The lower bound\n\n")
	pr("The fewest calls the API (design/cipherscale-api.md) allows to bring this tenant to the declared state:\n\n")
	pr("    bound = ceil(seeded users / 100) list pages      (one read of the tenant)\n")
	pr("          + ceil(new users / 100) creates            (endpoint 2 takes 100 users, with all their groups)\n")
	pr("          + one profile write per new user with a name, and per adopted user whose name differs\n")
	pr("          + one role patch per user whose direct roles differ (adds and removals in one call)\n")
	pr("          + one group add per existing user missing any declared group (endpoint 11 takes a list)\n")
	pr("          + one group removal per (user, group) present, undeclared, in an authoritative scope\n\n")
	pr("Here: %s = **%d**.\n\n", bd.formula(), bd.total())
	if p.applies > 0 {
		pr("The first read of the tenant is made by the first latency apply, before the count starts: every list page in the table below is a read beyond the bound's. ")
	}
	pr("It counts adoption writes: the adopted users' profile, role and group corrections and the removals from Authoritative groups. ")
	pr("It assumes a membership's adds for a new user ride in the user's create and that a user's own groups and its memberships' groups go in one add call; ")
	pr("the operator reconciles CipherscaleUsers and memberships separately, so calls above the bound on POST /tenants/users/{id}/groups come from there. ")
	wr := p.workloadResync
	if wr == "" {
		wr = "the CRD's default, 10m"
	}
	pr("It does not count the re-reads of the tenant once per resync interval (%s during the workload) while the run lasts, which the operator needs to see changes made elsewhere.\n\n", wr)

	pr("## Calls by route and status, until all Ready\n\n| route | status | calls |\n|---|---|---|\n")
	for _, s := range sortedStats(r.stats1) {
		pr("| %s | %d | %d |\n", s.Route, s.Status, s.Count)
	}
	pr("\n## Steady state: the restarted manager, %d resync intervals of %s\n\n| route | status | calls |\n|---|---|---|\n", p.resyncs, p.resync)
	for _, s := range sortedStats(r.steady) {
		pr("| %s | %d | %d |\n", s.Route, s.Status, s.Count)
	}
	pr("\nThe restarted manager's first interval (not in the window): %d calls, %d of them writes.\n", r.restart.Total, writes(r.restart))
	tenantUsers := len(r.w.seeds) + bd.newUsers
	pr("\nThe tenant holds %d users, so one read of it is %d list pages: the reader overlaps its pages by one user to notice a list that shifted (docs/cipherscale-api.md), 1+ceil((%d-100)/99), where pages that did not overlap would be ceil(%d/100) = %d. ",
		tenantUsers, listPages(tenantUsers), tenantUsers, tenantUsers, (tenantUsers+99)/100)
	pr("The window starts at an arbitrary phase of the jittered resync, so it can hold one read more or fewer than the number of intervals.\n\n")
	pr("Per-object polling, for comparison (arithmetic, not measured): reading each user and its roles every interval would take 2 x %d = %d calls per interval, against %.1f measured.\n\n",
		n, 2*n, steadyPer)
	if len(r.latencies) > 0 {
		sorted := append([]time.Duration{}, r.latencies...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		pr("## Latency: one CipherscaleUser on the idle operator\n\n")
		pr("From the create call to the Ready condition (True, current generation) arriving on a watch; %d applies one after another on the idle operator, before the workload, after one apply (not counted) that pays the first read of the tenant; the users are then deleted. ", len(sorted))
		pr("Every apply pays the create batch window, then the create, the profile write and the role patch at %s of API latency each. ", p.latency)
		pr("Sorted (ms): %s\n", durationsMs(sorted))
	}
	if iso := r.isolation; iso != nil {
		pr("\n## Tenant isolation: the restarted manager, after the steady state\n\n")
		pr("A second simulator serves a CipherscaleTenant in its own namespace (the default tenant's requestsPerSecond and burst, as above; no added latency). ")
		pr("Once it is Ready it answers 429 to everything (Retry-After: 1). Each round applies %d CipherscaleUsers of the default tenant (each with a profile, one role and one group) alone, ", iso.n)
		pr("then creates %d CipherscaleUsers on the throttled tenant, waits until that tenant and each of its objects report the storm (tenant not Ready, objects Reconciling/APIUnavailable) and stay so for two seconds, ", iso.n)
		pr("applies %d more users of the default tenant, and deletes the throttled tenant's objects (waiting two quiet seconds again). Times run from the first create to the last Ready seen on a watch.\n\n", iso.n)
		pr("| round | alone | beside the throttled tenant |\n|---|---|---|\n")
		for i := range iso.alone {
			with := "-"
			if i < len(iso.with) {
				with = iso.with[i].Round(time.Millisecond).String()
			}
			pr("| %d | %s | %s |\n", i+1, iso.alone[i].Round(time.Millisecond), with)
		}
		pr("\nThe throttled tenant answered 429 %d times during the stage. The reliability suite checks the same with an assertion (`go test -v ./test/reliability/ -ginkgo.focus \"two tenants\"`).\n", iso.throttled)
	}
	if st := r.slow; st != nil {
		pr("\n## Slow tenant: the restarted manager, after the isolation stage\n\n")
		pr("A third simulator serves CipherscaleTenant \"slow\" in its own namespace at requestsPerSecond %d, burst 1, with %d users Ready. ", slowRate, slowObjects)
		pr("Each round applies %d CipherscaleUsers of the default tenant (each with a profile, one role and one group) alone; then makes the slow tenant's API answer in %d ms, gives its %d objects a new first name (each needs a profile write), waits until it answered one, ", st.n, slowLatency, slowObjects)
		pr("applies %d more users of the default tenant, and lets the slow tenant's objects converge before the next round. Times run from the first create to the last Ready seen on a watch.\n\n", st.n)
		pr("| round | alone | beside the slow tenant | the slow tenant's profile writes answered meanwhile |\n|---|---|---|---|\n")
		for i := range st.alone {
			with, writes := "-", "-"
			if i < len(st.with) {
				with, writes = st.with[i].Round(time.Millisecond).String(), strconv.Itoa(st.writes[i])
			}
			pr("| %d | %s | %s | %s |\n", i+1, st.alone[i].Round(time.Millisecond), with, writes)
		}
	}
	if pc := r.paced; pc != nil {
		pr("\n## One file at a time: the restarted manager, after the isolation stage\n\n")
		pr("%d CipherscaleUsers of the default tenant, each a new user with one group and no profile, each in its own file, applied by one `kubectl apply -f` process per file, one after another (%s in all, %s a file). ",
			pc.n, pc.applied.Round(time.Millisecond), (pc.applied / time.Duration(pc.n)).Round(time.Millisecond))
		pr("While creates keep arriving (each within 1 s of the one before) the batch stays open, up to 100 users or 30 s for its oldest; a create after an idle second goes after one batch window. ")
		pr("The tenant answered %d create calls (%d calls in all, the group adds included); all were Ready %s after the last kubectl exited. The first users were Ready after (from the first apply): %s.\n",
			pc.creates, pc.calls, pc.lastLag.Round(time.Millisecond), durationsMs(pc.firstLag))
	}
	if len(r.heapFiles) > 0 {
		pr("\n## Heap profiles\n\n%s\n", strings.Join(r.heapFiles, "\n"))
	}
	return b.String()
}

// listPages is the number of pages one read of a tenant of n users takes: 100 users a page,
// each page after the first overlapping the one before by one user.
func listPages(n int) int {
	if n <= 100 {
		return 1
	}
	return 1 + (n-100+98)/99
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func loaded(avg string, cpus int) bool {
	f := strings.Fields(avg)
	if len(f) == 0 {
		return false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return err == nil && v >= float64(cpus)/2
}

func limitText(l float64) string {
	if l <= 0 {
		return "none"
	}
	return fmt.Sprintf("%g requests/s, burst %d (beyond it: 429 with Retry-After)", l, int(max(1, l)))
}

// percentile is the nearest-rank percentile (q in (0, 1]).
func percentile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func durationsMs(d []time.Duration) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = strconv.FormatInt(x.Milliseconds(), 10)
	}
	return strings.Join(parts, " ")
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

// diff returns the calls of b that a had not counted yet (the simulator's counts only grow).
func diff(b, a simulator.Stats) simulator.Stats {
	before := map[string]int{}
	for _, s := range a.Requests {
		before[fmt.Sprintf("%s|%d", s.Route, s.Status)] = s.Count
	}
	var out simulator.Stats
	for _, s := range b.Requests {
		c := s.Count - before[fmt.Sprintf("%s|%d", s.Route, s.Status)]
		if c > 0 {
			out.Requests = append(out.Requests, simulator.RouteStat{Route: s.Route, Status: s.Status, Count: c})
			out.Total += c
		}
	}
	return out
}

// scrape reads cipherscale_api_requests_total by "route|code" from the manager's metrics.
func scrape(url string) (map[string]int, error) {
	resp, err := http.Get(url) //nolint:gosec // loopback, once
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "cipherscale_api_requests_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		l := map[string]string{}
		for _, kv := range strings.Split(labels, `",`) {
			k, v, _ := strings.Cut(kv, `="`)
			l[k] = strings.TrimSuffix(v, `"`)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		out[l["route"]+"|"+l["code"]] += int(v)
	}
	return out, sc.Err()
}

// agreement compares the manager's counts with the simulator's and returns the differences.
func agreement(metrics map[string]int, s simulator.Stats) []string {
	sim := map[string]int{}
	for _, r := range s.Requests {
		sim[fmt.Sprintf("%s|%d", r.Route, r.Status)] += r.Count
	}
	var out []string
	for _, k := range sortedKeys(sim) {
		if metrics[k] != sim[k] {
			out = append(out, fmt.Sprintf("%s: metrics %d, simulator %d", k, metrics[k], sim[k]))
		}
	}
	for _, k := range sortedKeys(metrics) {
		if _, ok := sim[k]; !ok && metrics[k] != 0 {
			out = append(out, fmt.Sprintf("%s: metrics %d, simulator 0", k, metrics[k]))
		}
	}
	return out
}

// peakRSS returns the peak resident memory of a process in KiB.
func peakRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

// cpuSeconds returns the user+system CPU time of a process.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	if len(f) <= 12 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}
