package reliability

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// resync is the default tenant's spec.resyncInterval in every test: short, so that drift and recovery
// are seen within seconds.
const resync = 2 * time.Second

var (
	seq        atomic.Int64
	figuresMu  sync.Mutex
	allFigures []string
)

func next() int64 { return seq.Add(1) }

// figure prints a measured figure so that it appears in the output (run with -v), and keeps it
// for the summary printed at the end of the suite.
func figure(test, name, value string) {
	line := fmt.Sprintf("[%s] %s: %s", test, name, value)
	GinkgoWriter.Println(line)
	AddReportEntry(test+": "+name, value)
	figuresMu.Lock()
	allFigures = append(allFigures, line)
	figuresMu.Unlock()
}

var _ = ReportAfterSuite("figures", func(Report) {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	if len(allFigures) == 0 {
		return
	}
	// Straight to stdout, so that go test -v shows the summary even when every spec passed.
	fmt.Println("\n==== reliability figures ====")
	for _, l := range allFigures {
		fmt.Println(l)
	}
})

// ---- the simulator ----

// simEnv is a simulated tenant served on a loopback port, read and driven directly.
type simEnv struct {
	*simulator.Server
	URL string
}

func startSim() *simEnv {
	GinkgoHelper()
	s := simulator.New(apiKey)
	url, stop, err := s.Start("127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stop)
	return &simEnv{Server: s, URL: url}
}

func (s *simEnv) role(name string) string {
	GinkgoHelper()
	r, err := s.AddRole(simulator.RoleSeed{Name: fmt.Sprintf("%s-%d", name, next()), Type: cipherscale.RoleTypeSupport})
	Expect(err).NotTo(HaveOccurred())
	return r.ID
}

func (s *simEnv) group(name string) string {
	GinkgoHelper()
	g, err := s.AddGroup(simulator.GroupSeed{Name: fmt.Sprintf("%s-%d", name, next()), Roles: []string{}})
	Expect(err).NotTo(HaveOccurred())
	return g.ID
}

// usersByEmail counts the tenant's users per normalized email and keeps the last of each.
func (s *simEnv) usersByEmail() (map[string]int, map[string]cipherscale.User) {
	counts := map[string]int{}
	users := map[string]cipherscale.User{}
	for _, u := range s.Users() {
		e := cipherscale.NormalizeEmail(u.Email)
		counts[e]++
		users[e] = u
	}
	return counts, users
}

// statsSummary renders the simulator's statistics: the total, then each route with its statuses.
func statsSummary(st simulator.Stats) string {
	byRoute := map[string][]string{}
	var routes []string
	for _, r := range st.Requests {
		if _, ok := byRoute[r.Route]; !ok {
			routes = append(routes, r.Route)
		}
		byRoute[r.Route] = append(byRoute[r.Route], fmt.Sprintf("%d×%d", r.Count, r.Status))
	}
	sort.Strings(routes)
	parts := make([]string, 0, len(routes))
	for _, r := range routes {
		parts = append(parts, fmt.Sprintf("%s [%s]", r, strings.Join(byRoute[r], " ")))
	}
	return fmt.Sprintf("%d calls: %s", st.Total, strings.Join(parts, "; "))
}

// ---- the manager process ----

type managerConfig struct {
	name string
	// apiURL is the spec.url of ClusterCipherscaleTenant/default, which startManager creates
	// (or updates) before it starts the manager.
	apiURL string
	// tenant changes the default tenant's spec after defaultTenant's settings.
	tenant     func(*iamv1alpha1.ClusterCipherscaleTenant)
	namespaces []string
	// leaseNS enables --leader-elect with the lease in this namespace; empty runs without it.
	leaseNS string
	// args are added last, so they override the defaults.
	args []string
}

type manager struct {
	*devenv.Process
	name      string
	probePort int
	started   time.Time
}

// startManager starts the manager binary as a Deployment would run it, and waits until it serves
// /readyz. It is stopped (SIGTERM) when the spec ends, with its log printed when the spec failed.
func startManager(c managerConfig) *manager {
	GinkgoHelper()
	port, err := devenv.FreePort()
	Expect(err).NotTo(HaveOccurred())
	Expect(cp.CreateDefaultTenant(ctx, c.apiURL, apiKey, defaultTenant, func(t *iamv1alpha1.ClusterCipherscaleTenant) {
		if c.tenant != nil {
			c.tenant(t)
		}
	})).To(Succeed())
	args := []string{
		"--watch-namespaces", strings.Join(c.namespaces, ","),
		"--create-batch-window", "20ms",
		"--max-concurrent-reconciles", "16",
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", port),
		// Tenant objects name simulators on loopback, over plain http.
		devenv.ManagerURLArgs[0], devenv.ManagerURLArgs[1],
	}
	if c.leaseNS != "" {
		args = append(args, "--leader-elect", "--leader-election-namespace", c.leaseNS)
	}
	args = append(args, c.args...)
	logPath := filepath.Join(work, fmt.Sprintf("%s-%d.log", c.name, next()))
	p, err := devenv.Start(c.name, logPath, []string{"KUBECONFIG=" + operatorKubeconfig}, managerBin, args...)
	Expect(err).NotTo(HaveOccurred())
	m := &manager{Process: p, name: c.name, probePort: port, started: time.Now()}
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			GinkgoWriter.Printf("---- last lines of %s (%s) ----\n%s\n", m.name, m.LogPath, tail(m.Log(), 80))
		}
		m.Stop(10 * time.Second)
	})
	Eventually(func() int { return m.probe("/readyz") }, 30*time.Second, 100*time.Millisecond).
		Should(Equal(http.StatusOK), func() string { return tail(m.Log(), 40) })
	return m
}

// defaultTenant are the settings of ClusterCipherscaleTenant/default in every spec: the rate
// and resync the specs are measured with, and, for reliability rather than the trust rules
// (internal/controller/trust_test.go), every namespace trusted: the specs adopt users and grant
// roles nobody holds yet, whose type the operator cannot see. The removal budget is the CRD's
// default (25 an hour) unless a spec sets one.
func defaultTenant(t *iamv1alpha1.ClusterCipherscaleTenant) {
	t.Spec.RequestsPerSecond = ptr(int32(200))
	t.Spec.Burst = ptr(int32(100))
	t.Spec.ResyncInterval = &metav1.Duration{Duration: resync}
	devenv.TrustAll(t)
}

// rate sets the default tenant's requestsPerSecond and burst.
func rate(rps, burst int32) func(*iamv1alpha1.ClusterCipherscaleTenant) {
	return func(t *iamv1alpha1.ClusterCipherscaleTenant) {
		t.Spec.RequestsPerSecond, t.Spec.Burst = ptr(rps), ptr(burst)
	}
}

// noRemovalBudget sets no limit on the default tenant's removals.
func noRemovalBudget(t *iamv1alpha1.ClusterCipherscaleTenant) {
	t.Spec.RemovalBudget = &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(0))}
}

// freshCluster removes what earlier specs left (no manager runs between specs): every
// CipherscaleUser, CipherscaleGroupMembership, CipherscaleTenant and ClusterCipherscaleTenant,
// ClusterCipherscaleTenant/default included, their finalizers removed. So each spec's default
// tenant starts with an empty status (no removal of another spec's hour counts against its
// budget), and a manager that watches every namespace serves only its own spec's objects, not
// hundreds left behind whose simulators are gone.
func freshCluster() {
	GinkgoHelper()
	// An Ordered container's specs share one manager (started before its first spec, and after
	// this, which is a BeforeEach of the suite): the cluster is made fresh once, before the first
	// of them, never under its running manager.
	report := CurrentSpecReport()
	if report.IsInOrderedContainer {
		container := strings.Join(report.ContainerHierarchyTexts, "/")
		if container == freshFor {
			return
		}
		freshFor = container
	} else {
		freshFor = ""
	}
	var left []client.Object
	for _, list := range []client.ObjectList{&iamv1alpha1.CipherscaleUserList{}, &iamv1alpha1.CipherscaleGroupMembershipList{},
		&iamv1alpha1.CipherscaleTenantList{}, &iamv1alpha1.ClusterCipherscaleTenantList{}} {
		Expect(k8s.List(ctx, list)).To(Succeed())
		Expect(meta.EachListItem(list, func(o runtime.Object) error {
			left = append(left, o.(client.Object))
			return nil
		})).To(Succeed())
	}
	forEach(left, func(o client.Object) error {
		if len(o.GetFinalizers()) > 0 {
			err := k8s.Patch(ctx, o, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))
			if client.IgnoreNotFound(err) != nil {
				return err
			}
		}
		return client.IgnoreNotFound(k8s.Delete(ctx, o))
	})
	Eventually(func() bool {
		for _, o := range left {
			if !apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(o), o)) {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond).Should(BeTrue(), "what earlier specs left is gone")
}

// freshFor is the Ordered container for which freshCluster made the cluster fresh last.
var freshFor string

var _ = BeforeEach(freshCluster)

// probe returns the status of a health endpoint, 0 when it does not answer.
func (m *manager) probe(path string) int {
	c := http.Client{Timeout: 2 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", m.probePort, path), nil)
	if err != nil {
		return 0
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// leads reports whether the manager says it acquired the leader election lease.
func (m *manager) leads() bool {
	return strings.Contains(strings.ToLower(m.Log()), "successfully acquired lease")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "..."
		}
	}
	return strings.Join(lines, "\n")
}

// ---- objects ----

func newNamespace(prefix string) string {
	GinkgoHelper()
	name := fmt.Sprintf("%s-%d", prefix, next())
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// userSpec is one CipherscaleUser as declared, and what the tenant must hold for it.
type userSpec struct {
	Namespace, Name, Email string
	Roles, Groups          []string
	FirstName              string
}

func (u userSpec) object() *iamv1alpha1.CipherscaleUser {
	obj := &iamv1alpha1.CipherscaleUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: u.Namespace, Name: u.Name},
		Spec:       iamv1alpha1.CipherscaleUserSpec{Email: u.Email},
	}
	if u.Roles != nil {
		r := append([]string{}, u.Roles...)
		obj.Spec.Roles = &r
	}
	if u.Groups != nil {
		g := append([]string{}, u.Groups...)
		obj.Spec.Groups = &g
	}
	if u.FirstName != "" {
		obj.Spec.FirstName = &u.FirstName
	}
	return obj
}

// makeUsers declares n users named prefix-i with fresh emails, the given roles and groups.
func makeUsers(ns, prefix string, n int, roles, groups []string, withName bool) []userSpec {
	run := next()
	out := make([]userSpec, n)
	for i := range out {
		out[i] = userSpec{
			Namespace: ns, Name: fmt.Sprintf("%s-%d", prefix, i),
			Email: fmt.Sprintf("%s-%d-%d@example.com", prefix, run, i),
			Roles: roles, Groups: groups,
		}
		if withName {
			out[i].FirstName = fmt.Sprintf("User%d", i)
		}
	}
	return out
}

func userObjects(specs []userSpec) []client.Object {
	out := make([]client.Object, len(specs))
	for i, s := range specs {
		out[i] = s.object()
	}
	return out
}

// createAll creates the objects with a few writers at once.
func createAll(objs []client.Object) {
	GinkgoHelper()
	forEach(objs, func(o client.Object) error {
		if err := k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
		return nil
	})
}

// forEach calls fn on every object, 8 at a time, and fails the spec on any error.
func forEach(objs []client.Object, fn func(client.Object) error) {
	GinkgoHelper()
	var wg sync.WaitGroup
	errs := make(chan error, len(objs))
	queue := make(chan client.Object)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range queue {
				if err := fn(o); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, o := range objs {
		queue <- o
	}
	close(queue)
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
}

func readyCondition(conds []metav1.Condition) *metav1.Condition {
	return meta.FindStatusCondition(conds, iamv1alpha1.ConditionReady)
}

// isReady: Ready True for the object's current generation.
func isReady(conds []metav1.Condition, gen int64) bool {
	c := readyCondition(conds)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
}

// readiness counts the objects of a namespace (both kinds) and those Ready.
type readiness struct {
	Ready, Total int
	NotReady     []string
}

func (r readiness) String() string {
	s := fmt.Sprintf("%d/%d Ready", r.Ready, r.Total)
	if n := len(r.NotReady); n > 0 {
		show := r.NotReady
		if n > 5 {
			show = show[:5]
		}
		s += fmt.Sprintf("; not ready: %s", strings.Join(show, ", "))
	}
	return s
}

func readyIn(namespaces ...string) readiness {
	var r readiness
	for _, ns := range namespaces {
		var us iamv1alpha1.CipherscaleUserList
		if err := k8s.List(ctx, &us, client.InNamespace(ns)); err != nil {
			return readiness{}
		}
		for i := range us.Items {
			u := &us.Items[i]
			r.Total++
			if isReady(u.Status.Conditions, u.Generation) && u.DeletionTimestamp.IsZero() {
				r.Ready++
			} else {
				r.NotReady = append(r.NotReady, describe(u.Name, u.Status.Conditions))
			}
		}
		var ms iamv1alpha1.CipherscaleGroupMembershipList
		if err := k8s.List(ctx, &ms, client.InNamespace(ns)); err != nil {
			return readiness{}
		}
		for i := range ms.Items {
			m := &ms.Items[i]
			r.Total++
			if isReady(m.Status.Conditions, m.Generation) && m.DeletionTimestamp.IsZero() {
				r.Ready++
			} else {
				r.NotReady = append(r.NotReady, describe(m.Name, m.Status.Conditions))
			}
		}
	}
	return r
}

func describe(name string, conds []metav1.Condition) string {
	c := readyCondition(conds)
	if c == nil {
		return name + " (no Ready condition)"
	}
	return fmt.Sprintf("%s (Ready=%s %s: %s)", name, c.Status, c.Reason, c.Message)
}

// waitAllReady waits until the namespaces hold want objects, all Ready, and returns when that was
// first seen.
func waitAllReady(timeout time.Duration, want int, namespaces ...string) time.Time {
	GinkgoHelper()
	var at time.Time
	Eventually(func(g Gomega) {
		r := readyIn(namespaces...)
		g.Expect(r.Total).To(Equal(want), r.String())
		g.Expect(r.Ready).To(Equal(want), r.String())
		at = time.Now()
	}, timeout, 100*time.Millisecond).Should(Succeed())
	return at
}

// expectTenant checks what a person would check in the Cipherscale console: every declared
// email exists exactly once, was invited exactly once, and has exactly the declared roles and
// groups (extra lists groups some membership adds to an email).
func expectTenant(sim *simEnv, specs []userSpec, extra map[string][]string) {
	GinkgoHelper()
	counts, users := sim.usersByEmail()
	var problems []string
	for _, s := range specs {
		e := cipherscale.NormalizeEmail(s.Email)
		if counts[e] != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d users with the email", s.Name, counts[e]))
			continue
		}
		if n := sim.InvitationsSent(e); n != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d invitations sent", s.Name, n))
		}
		u := users[e]
		if got, want := normSorted(u.RoleIDs()), normSorted(s.Roles); !equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s: roles %v, want %v", s.Name, got, want))
		}
		wantGroups := append(append([]string{}, s.Groups...), extra[e]...)
		if got, want := normSorted(u.GroupIDs()), normSorted(wantGroups); !equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s: groups %v, want %v", s.Name, got, want))
		}
		if s.FirstName != "" && u.FirstName != s.FirstName {
			problems = append(problems, fmt.Sprintf("%s: firstName %q, want %q", s.Name, u.FirstName, s.FirstName))
		}
	}
	Expect(problems).To(BeEmpty(), "the tenant differs from the declared users")
}

func normSorted(ids []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, id := range ids {
		n := cipherscale.NormalizeID(id)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// userObj reads a CipherscaleUser.
func userObj(ns, name string) *iamv1alpha1.CipherscaleUser {
	u := &iamv1alpha1.CipherscaleUser{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return nil
	}
	return u
}

func ptr[T any](v T) *T { return &v }
