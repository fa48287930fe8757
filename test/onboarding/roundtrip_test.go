package onboarding

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// tenantSize is the number of users of the simulated tenant, the owner included.
const tenantSize = 1000

// Manager settings of the round trip.
var managerArgs = []string{"--max-concurrent-reconciles", "32"}

// defaultTenant is ClusterCipherscaleTenant/default of the round trip: the simulator has no
// request limit, so the client's rate is generous; a long resync keeps the steady state out of
// the figures. Adopting the tenant's people, administrators among them, is what the namespace
// the export is applied to must be trusted with (see the security model).
func defaultTenant(t *iamv1alpha1.ClusterCipherscaleTenant) {
	t.Spec.RequestsPerSecond = ptr(int32(500))
	t.Spec.Burst = ptr(int32(500))
	t.Spec.ResyncInterval = &metav1.Duration{Duration: 10 * time.Minute}
	devenv.TrustNamespaces("default")(t)
}

func ptr[T any](v T) *T { return &v }

// seedTenant fills the simulator through /_sim/: 4 roles, 3 groups and tenantSize users (the
// owner, then active, pending and inactive people, with 0 to 2 direct roles, 0 to 2 groups, and
// some profile fields set).
func seedTenant() (roles map[string]string) {
	GinkgoHelper()
	roles = map[string]string{}
	var roleIDs, groupIDs []string
	for _, r := range []simulator.RoleSeed{{Name: "Admin", Type: cipherscale.RoleTypeAdmin}, {Name: "Support", Type: cipherscale.RoleTypeSupport},
		{Name: "Auditor", Type: cipherscale.RoleTypeAuditor}, {Name: "Billing", Type: cipherscale.RoleTypeBilling}} {
		var out cipherscale.Role
		Expect(control.Post(ctx, "/_sim/roles", r, &out)).To(Succeed())
		roles[out.Name] = out.ID
		roleIDs = append(roleIDs, out.ID)
	}
	for _, g := range []simulator.GroupSeed{{Name: "Engineering", Roles: []string{}}, {Name: "Support", Roles: []string{roleIDs[1]}}, {Name: "Contractors", Roles: []string{}}} {
		var out cipherscale.Group
		Expect(control.Post(ctx, "/_sim/groups", g, &out)).To(Succeed())
		groupIDs = append(groupIDs, out.ID)
	}
	seeds := make([]simulator.UserSeed, tenantSize)
	for i := range seeds {
		s := simulator.UserSeed{Email: fmt.Sprintf("person.%04d@example.com", i), Roles: [][]string{nil, {roleIDs[i%4]}, {roleIDs[i%4], roleIDs[(i+1)%4]}}[i%3], Groups: [][]string{nil, groupIDs[:1], groupIDs[1:2], {groupIDs[0], groupIDs[2]}}[i%4]}
		switch i % 5 {
		case 0, 1, 2:
			s.Status = cipherscale.StatusActive
		case 3:
			s.Status = cipherscale.StatusPending
		case 4:
			s.Status = cipherscale.StatusInactive
		}
		if i%2 == 0 {
			s.FirstName, s.LastName = "Person", fmt.Sprintf("Number %d", i)
		}
		if i%7 == 0 {
			s.Image = fmt.Sprintf("https://example.com/avatars/%d.png", i)
		}
		if i == 0 {
			s = simulator.UserSeed{Email: "owner@example.com", Status: cipherscale.StatusActive, IsOwner: true,
				FirstName: "Tenant", LastName: "Owner", Roles: roleIDs[:1]}
		}
		seeds[i] = s
	}
	var g errgroup.Group
	g.SetLimit(8)
	for _, s := range seeds {
		g.Go(func() error { _, err := control.AddUser(ctx, s); return err })
	}
	Expect(g.Wait()).To(Succeed())
	return roles
}

// tenantState is every user of the tenant as the simulator holds it, sorted by email.
func tenantState() []simulator.UserRecord {
	GinkgoHelper()
	recs, err := control.Users(ctx)
	Expect(err).NotTo(HaveOccurred())
	sort.Slice(recs, func(i, j int) bool { return recs[i].User.Email < recs[j].User.Email })
	return recs
}

// callsByRoute renders the simulator's statistics and fails on any route that is not a read.
func onlyReads() string {
	GinkgoHelper()
	st, err := control.Stats(ctx)
	Expect(err).NotTo(HaveOccurred())
	var parts []string
	for _, r := range st.Requests {
		Expect(r.Route).To(HavePrefix("GET "), "a call that is not a read: %+v", r)
		parts = append(parts, fmt.Sprintf("%s %d×%d", r.Route, r.Count, r.Status))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d calls (%s)", st.Total, strings.Join(parts, "; "))
}

// readyCount counts the CipherscaleUsers Ready for their current generation.
func readyCount() (int, error) {
	var list iamv1alpha1.CipherscaleUserList
	if err := k8s.List(ctx, &list); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		c := meta.FindStatusCondition(list.Items[i].Status.Conditions, iamv1alpha1.ConditionReady)
		if c != nil && c.Status == "True" && c.ObservedGeneration == list.Items[i].Generation {
			n++
		}
	}
	return n, nil
}

var _ = Describe("adopting a tenant of 1,000 users", Ordered, func() {
	var roles map[string]string
	var dir string
	keyEnv := []string{"CIPHERSCALE_API_KEY=" + apiKey}
	var kubeEnv []string

	BeforeAll(func() {
		roles = seedTenant()
		dir = filepath.Join(work, "tenant")
		kubeEnv = append([]string{"KUBECONFIG=" + cp.Kubeconfig}, keyEnv...)

		operatorNS := "cipherscale-system"
		kubeconfig := filepath.Join(work, "operator.kubeconfig")
		Expect(cp.GrantOperator(ctx, root, operatorUser, kubeconfig)).To(Succeed())
		Expect(cp.GrantLeaderElection(ctx, root, operatorNS, operatorUser)).To(Succeed())
		Expect(cp.CreateDefaultTenant(ctx, sim.URL, apiKey, defaultTenant)).To(Succeed())
		port, err := devenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		args := append([]string{devenv.ManagerURLArgs[0], devenv.ManagerURLArgs[1], "--metrics-bind-address", "0",
			"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", port)}, managerArgs...)
		mgr, err := devenv.Start("manager", filepath.Join(work, "manager.log"),
			[]string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=" + operatorNS}, bins["manager"], args...)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { mgr.Stop(10 * time.Second) })
		figure("manager flags", strings.Join(managerArgs, " ")+"; ClusterCipherscaleTenant/default: requestsPerSecond 500, burst 500, resyncInterval 10m")
	})

	It("exports every user, byte-identical twice, reading only", func() {
		Expect(control.ResetStats(ctx)).To(Succeed())
		start := time.Now()
		r := run(keyEnv, "export", "--api-url", sim.URL, "-o", dir)
		Expect(r.code).To(Equal(0), r.stderr)
		figure("export of 1,000 users", time.Since(start).Round(time.Millisecond).String()+", "+onlyReads())
		Expect(r.stderr).To(ContainSubstring(fmt.Sprintf("Reading the tenant: %d of %d users", tenantSize, tenantSize)))

		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(tenantSize + 1)) // and kustomization.yaml

		stream := run(keyEnv, "export", "--api-url", sim.URL)
		Expect(stream.code).To(Equal(0), stream.stderr)
		Expect(strings.Count(stream.stdout, "kind: CipherscaleUser\n")).To(Equal(tenantSize))
		var joined []string
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			b, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			joined = append(joined, string(b))
		}
		Expect(stream.stdout).To(Equal(strings.Join(joined, "---\n")), "the stream and the folder hold the same documents in the same order")
		again := run(keyEnv, "export", "--api-url", sim.URL)
		Expect(again.stdout).To(Equal(stream.stdout), "a second export of an unchanged tenant is byte-identical")

		owner, err := os.ReadFile(findFile(dir, "owner@example.com"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(owner)).To(HavePrefix("# The tenant owner."))
	})

	It("is adopted with no create and no write, every object Ready; plan then says nothing would change", func() {
		Expect(control.ResetStats(ctx)).To(Succeed())
		start := time.Now()
		kubectl("apply", "--server-side", "-k", dir)
		applied := time.Since(start)
		Eventually(readyCount, 3*time.Minute, time.Second).Should(Equal(tenantSize))
		took := time.Since(start)
		calls := onlyReads()
		figure("round trip", fmt.Sprintf("%d CipherscaleUsers applied with kubectl apply --server-side -k in %s, all Ready after %s; tenant calls: %s",
			tenantSize, applied.Round(time.Millisecond), took.Round(time.Millisecond), calls))

		Expect(control.ResetStats(ctx)).To(Succeed())
		start = time.Now()
		// With the tenant object, plan applies its trust rules, as the operator does.
		r := run(kubeEnv, "plan", "--tenant", "ClusterCipherscaleTenant/default", "-f", dir)
		Expect(r.code).To(Equal(0), r.stdout+r.stderr)
		Expect(r.stdout).To(Equal(fmt.Sprintf("No changes: the tenant matches all %d objects.\n", tenantSize)))
		figure("plan -f DIR after the round trip", fmt.Sprintf("exit %d in %s, %s", r.code, time.Since(start).Round(time.Millisecond), onlyReads()))

		r = run(kubeEnv, "plan", "--tenant", "ClusterCipherscaleTenant/default")
		Expect(r.code).To(Equal(0), r.stdout+r.stderr)
		Expect(r.stdout).To(Equal(fmt.Sprintf("No changes: the tenant matches all %d objects.\n", tenantSize)), "plan of the cluster's objects")

		// With --api-url alone there is no tenant object to read the trust rules from: plan
		// says it assumes the tenant's default, under which namespace default may not hold the
		// administrators' privileged roles.
		r = run(kubeEnv, "plan", "--api-url", sim.URL)
		Expect(r.stderr).To(ContainSubstring("the plan assumes the tenant's default trust"))
		Expect(r.code).To(Equal(2), r.stdout+r.stderr)
		Expect(r.stdout).To(ContainSubstring(": NotAllowed: spec.roles grants or removes the privileged roles"))
	})

	It("plans exactly the edits made to three files, and writes nothing", func() {
		before := tenantState()
		var withRole, toDeactivate, toDelete string
		for _, f := range sortedFiles(dir) {
			b, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			s := string(b)
			activeNoRoles := strings.Contains(s, "  active: true\n") && strings.Contains(s, "  roles: []\n") && !strings.HasPrefix(s, "#")
			switch {
			case withRole == "" && activeNoRoles:
				withRole = f
			case toDeactivate == "" && activeNoRoles:
				toDeactivate = f
			case toDelete == "" && activeNoRoles:
				toDelete = f
			}
		}
		Expect([]string{withRole, toDeactivate, toDelete}).NotTo(ContainElement(""))
		edit(withRole, "  roles: []\n", "  roles:\n    - "+roles["Billing"]+"  # Billing\n")
		edit(toDeactivate, "  active: true\n", "  active: false\n")
		Expect(os.Remove(toDelete)).To(Succeed())

		Expect(control.ResetStats(ctx)).To(Succeed())
		r := run(kubeEnv, "plan", "--tenant", "ClusterCipherscaleTenant/default", "-f", dir)
		Expect(r.code).To(Equal(2), r.stdout+r.stderr)
		Expect(r.stdout).To(Equal(strings.Join([]string{
			fmt.Sprintf("~ CipherscaleUser default/%s (%s): roles +1 -0", objectName(withRole), emailOf(withRole)),
			fmt.Sprintf("    + role Billing (%s)", roles["Billing"]),
			fmt.Sprintf("~ CipherscaleUser default/%s (%s): deactivate", objectName(toDeactivate), emailOf(toDeactivate)),
			fmt.Sprintf("Plan: 2 objects to change, 0 blocked (a person must act), %d unchanged.", tenantSize-3),
		}, "\n") + "\n"))
		figure("plan -f DIR after three edits", fmt.Sprintf("exit %d, %s", r.code, onlyReads()))
		Expect(tenantState()).To(Equal(before), "the tenant is unchanged")
	})

	// Applying this folder too was measured once (3 memberships Ready, the users' spec.groups
	// dropped, no tenant call) but took 49s, as each of the 1,000 user updates re-reconciles the
	// memberships that name the user; the plan alone keeps the suite short.
	It("exports one Additive membership per group, which plan says changes nothing", func() {
		dir := filepath.Join(work, "with-memberships") // the round trip's objects are in the cluster
		keyEnv := []string{"CIPHERSCALE_API_KEY=" + apiKey, "KUBECONFIG=" + cp.Kubeconfig}
		r := run(keyEnv, "export", "--api-url", sim.URL, "--memberships", "-o", dir)
		Expect(r.code).To(Equal(0), r.stderr)
		memberships, err := filepath.Glob(filepath.Join(dir, "*.membership.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(memberships).To(HaveLen(3), "one per group")
		for _, f := range sortedFiles(dir) {
			b, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).NotTo(ContainSubstring("  groups:"), "%s: the memberships declare the groups", f)
		}

		r = run(keyEnv, "plan", "--tenant", "ClusterCipherscaleTenant/default", "-f", dir)
		Expect(r.code).To(Equal(0), r.stdout+r.stderr)
		Expect(r.stdout).To(Equal(fmt.Sprintf("No changes: the tenant matches all %d objects.\n", tenantSize+3)))
	})
})

func sortedFiles(dir string) []string {
	GinkgoHelper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	sort.Strings(files)
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			out = append(out, f)
		}
	}
	return out
}

// findFile returns the exported file of an email.
func findFile(dir, email string) string {
	GinkgoHelper()
	for _, f := range sortedFiles(dir) {
		if emailOf(f) == email {
			return f
		}
	}
	Fail("no file for " + email)
	return ""
}

func emailOf(path string) string {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	for _, l := range strings.Split(string(b), "\n") {
		if e, ok := strings.CutPrefix(l, "  email: "); ok {
			return e
		}
	}
	return ""
}

func objectName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".yaml") }

func edit(path, from, to string) {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	Expect(string(b)).To(ContainSubstring(from))
	Expect(os.WriteFile(path, []byte(strings.Replace(string(b), from, to, 1)), 0o644)).To(Succeed())
}
