package controller_test

import (
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// undeclaredSim serves a simulator of another tenant with its owner, and returns it with its URL
// and the owner's email.
func undeclaredSim(domain string) (*simulator.Server, string, string) {
	s := simulator.New(otherKey)
	srv := httptest.NewServer(s)
	DeferCleanup(srv.Close)
	owner := "owner@" + domain
	_, err := s.AddUser(simulator.UserSeed{Email: owner, IsOwner: true, Status: cipherscale.StatusActive})
	Expect(err).NotTo(HaveOccurred())
	return s, srv.URL, owner
}

// undeclaredTenant creates a CipherscaleTenant of the simulator at url with the policy.
func undeclaredTenant(ns, url string, policy *iamv1alpha1.UndeclaredUsersSpec, perHour int32) *iamv1alpha1.CipherscaleTenant {
	allowTenant(ns, "key", "CipherscaleTenant/corp")
	newSecret(ns, "key", map[string]string{"api-key": otherKey})
	t := &iamv1alpha1.CipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corp"},
		Spec: iamv1alpha1.CipherscaleTenantSpec{
			APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: "key"},
			TenantSettings: iamv1alpha1.TenantSettings{
				URL: url, UndeclaredUsers: policy,
				RemovalBudget: &iamv1alpha1.RemovalBudgetSpec{PerHour: &perHour},
			},
		},
	}
	Expect(k8s.Create(ctx, t)).To(Succeed())
	return t
}

// writeCalls counts the requests to the simulator that are not reads.
func writeCalls(s *simulator.Server) int {
	n := 0
	for _, r := range s.Stats().Requests {
		if !strings.HasPrefix(r.Route, "GET ") {
			n += r.Count
		}
	}
	return n
}

// undeclaredMetric returns the value of cipherscale_undeclared_users for the tenant label, and
// whether the series exists.
func undeclaredMetric(label string) (float64, bool) {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "cipherscale_undeclared_users" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == label {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// inactiveEmails returns the sorted emails of the simulator's inactive users.
func inactiveEmails(s *simulator.Server) []string {
	out := []string{}
	for _, u := range s.Users() {
		if u.Status == cipherscale.StatusInactive {
			out = append(out, normalize(u.Email))
		}
	}
	sort.Strings(out)
	return out
}

func tenantStatus(t *iamv1alpha1.CipherscaleTenant) func() iamv1alpha1.TenantStatus {
	return func() iamv1alpha1.TenantStatus {
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		return t.Status
	}
}

var _ = Describe("Undeclared users of a tenant object", func() {
	It("reports 380 undeclared users of 500, 120 declared by objects and email members, without a write", func() {
		ns := newNamespace()
		s, url, owner := undeclaredSim("corp.example")
		group, err := s.AddGroup(simulator.GroupSeed{Name: "staff"})
		Expect(err).NotTo(HaveOccurred())
		// 499 users besides the owner: u001..u080 declared by CipherscaleUsers, u081..u120 by
		// the email members of two memberships (already in their group, so that nothing is to
		// be written), the rest undeclared.
		var emails []string
		for i := 1; i <= 499; i++ {
			e := fmt.Sprintf("u%03d@corp.example", i)
			emails = append(emails, e)
			seed := simulator.UserSeed{Email: e}
			if i > 80 && i <= 120 {
				seed.Groups = []string{group.ID}
			}
			_, err := s.AddUser(seed)
			Expect(err).NotTo(HaveOccurred())
		}
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "corp"}
		for i := 1; i <= 80; i++ {
			mail := emails[i-1]
			if i%10 == 0 {
				mail = strings.ToUpper(mail) // declared in any case
			}
			pausedUser(ns, fmt.Sprintf("u%03d", i), mail, ref)
		}
		for j, span := range [][2]int{{81, 100}, {101, 120}} {
			var members []iamv1alpha1.Member
			for i := span[0]; i <= span[1]; i++ {
				members = append(members, byEmail(emails[i-1]))
			}
			m := &iamv1alpha1.CipherscaleGroupMembership{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("staff-%d", j)},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{
					GroupID: group.ID, Policy: iamv1alpha1.MembershipPolicyAdditive, Members: members, TenantRef: ref,
					// Orphan: the cleanup deletes them after the tenant's simulator has stopped.
					DeletionPolicy: iamv1alpha1.MembershipDeletionPolicyOrphan,
				},
			}
			Expect(k8s.Create(ctx, m)).To(Succeed())
		}
		Expect(s.Users()).To(HaveLen(500))
		s.ResetStats()

		t := undeclaredTenant(ns, url, &iamv1alpha1.UndeclaredUsersSpec{
			Policy:  iamv1alpha1.UndeclaredUsersReport,
			Exclude: []string{"u49*@corp.example"},
		}, 25)
		expectTenantReady(t)

		undeclared := append([]string{owner}, emails[120:]...)
		sort.Strings(undeclared)
		Expect(undeclared).To(HaveLen(380))
		Eventually(tenantStatus(t), 20*time.Second, 100*time.Millisecond).Should(And(
			HaveField("Declared", HaveValue(BeEquivalentTo(120))),
			HaveField("Undeclared", HaveValue(Equal(iamv1alpha1.UndeclaredStatus{Count: 380, Emails: undeclared[:20]}))),
		))
		label := "CipherscaleTenant/" + ns + "/corp"
		value, ok := undeclaredMetric(label)
		Expect(ok).To(BeTrue())
		Expect(value).To(BeEquivalentTo(380))
		Eventually(eventsOf(t), 10*time.Second, 100*time.Millisecond).Should(ContainElement("UndeclaredUsers"))
		// Report acts on nobody: the owner and the excluded addresses are counted, nothing is
		// written, and every user keeps its state.
		Expect(writeCalls(s)).To(BeZero())
		Expect(inactiveEmails(s)).To(BeEmpty())
		Expect(s.Users()).To(HaveLen(500))
		Expect(meta.FindStatusCondition(t.Status.Conditions, iamv1alpha1.ConditionStalled)).To(BeNil())

		By("back to Ignore: the report and the metric go")
		update(t, func() { t.Spec.UndeclaredUsers.Policy = iamv1alpha1.UndeclaredUsersIgnore })
		Eventually(tenantStatus(t), 20*time.Second, 100*time.Millisecond).Should(HaveField("Undeclared", BeNil()))
		_, ok = undeclaredMetric(label)
		Expect(ok).To(BeFalse())
		Expect(writeCalls(s)).To(BeZero())
	})

	It("deactivates exactly the undeclared, non-excluded users other than the owner after a 2s grace period; declaring one first saves them", func() {
		ns := newNamespace()
		s, url, owner := undeclaredSim("dept.example")
		// d01..d39: d01..d10 declared, d30..d39 excluded, d11..d29 undeclared; d29 is declared
		// during the grace period.
		var emails []string
		for i := 1; i <= 39; i++ {
			e := fmt.Sprintf("d%02d@dept.example", i)
			emails = append(emails, e)
			_, err := s.AddUser(simulator.UserSeed{Email: e, Status: cipherscale.StatusActive})
			Expect(err).NotTo(HaveOccurred())
		}
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "corp"}
		for i := 1; i <= 10; i++ {
			pausedUser(ns, fmt.Sprintf("d%02d", i), emails[i-1], ref)
		}
		s.ResetStats()

		t := undeclaredTenant(ns, url, &iamv1alpha1.UndeclaredUsersSpec{
			Policy:      iamv1alpha1.UndeclaredUsersDeactivate,
			Exclude:     []string{"d3*@dept.example"},
			GracePeriod: &metav1.Duration{Duration: 2 * time.Second},
		}, 100)
		Eventually(tenantStatus(t), 20*time.Second, 50*time.Millisecond).
			Should(HaveField("Undeclared", HaveValue(HaveField("Count", BeEquivalentTo(30)))))
		start := time.Now()
		pausedUser(ns, "d29", emails[28], ref)
		Expect(inactiveEmails(s)).To(BeEmpty(), "nobody is deactivated within the grace period")

		want := emails[10:28] // d11..d28
		Eventually(func() []string { return inactiveEmails(s) }, 20*time.Second, 100*time.Millisecond).Should(Equal(want))
		// Soon after the grace period, not at some later resync; generous, as each removal is saved
		// to the tenant's status before its call and a cold CI run compiles beside this suite
		// (10.4 s measured there).
		Expect(time.Since(start)).To(BeNumerically("<", 15*time.Second))
		Eventually(tenantStatus(t), 20*time.Second, 100*time.Millisecond).Should(And(
			HaveField("Declared", HaveValue(BeEquivalentTo(11))),
			HaveField("Undeclared", HaveValue(HaveField("Count", BeEquivalentTo(29)))),
			HaveField("RemovalBudget", HaveValue(And(HaveField("Spent", BeEquivalentTo(18)), HaveField("Waiting", BeEquivalentTo(0))))),
		))
		Consistently(func() []string { return inactiveEmails(s) }, 3*time.Second, 200*time.Millisecond).Should(Equal(want))
		Expect(s.Stats().Count(cipherscale.RouteDeactivateUser)).To(Equal(18), "each user deactivated once, the owner never tried")
		Expect(writeCalls(s)).To(Equal(18))
		o, _ := s.UserByEmail(owner)
		Expect(o.Status).To(Equal(cipherscale.StatusActive))
		Expect(meta.FindStatusCondition(t.Status.Conditions, iamv1alpha1.ConditionStalled)).To(BeNil())
	})

	It("waits past the removal budget, Stalled with the count, until allow-removals lets the rest go", func() {
		ns := newNamespace()
		s, url, _ := undeclaredSim("budget.example")
		var emails []string
		for i := 1; i <= 12; i++ {
			e := fmt.Sprintf("b%02d@budget.example", i)
			emails = append(emails, e)
			_, err := s.AddUser(simulator.UserSeed{Email: e, Status: cipherscale.StatusActive})
			Expect(err).NotTo(HaveOccurred())
		}
		t := undeclaredTenant(ns, url, &iamv1alpha1.UndeclaredUsersSpec{
			Policy:      iamv1alpha1.UndeclaredUsersDeactivate,
			GracePeriod: &metav1.Duration{Duration: 0},
		}, 5)
		Eventually(tenantCondition(t, iamv1alpha1.ConditionStalled), 20*time.Second, 100*time.Millisecond).
			Should(haveCondition(t, metav1.ConditionTrue, "RemovalBudgetExceeded"))
		Expect(tenantCondition(t, iamv1alpha1.ConditionStalled)().Message).To(HavePrefix("7 removals wait"))
		Expect(tenantCondition(t, iamv1alpha1.ConditionReady)()).To(haveCondition(t, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate),
			"the tenant stays usable by its objects")
		Expect(inactiveEmails(s)).To(HaveLen(5))
		Expect(t.Status.RemovalBudget).To(HaveValue(And(HaveField("Spent", BeEquivalentTo(5)), HaveField("Waiting", BeEquivalentTo(7)))))
		Eventually(eventsOf(t), 10*time.Second, 100*time.Millisecond).Should(ContainElement("RemovalBudgetExceeded"))

		By("a person allows 7 more removals")
		update(t, func() { t.Annotations = map[string]string{"cipherscale.com/allow-removals": "7"} })
		Eventually(func() []string { return inactiveEmails(s) }, 20*time.Second, 100*time.Millisecond).Should(Equal(emails))
		Eventually(tenantCondition(t, iamv1alpha1.ConditionStalled), 20*time.Second, 100*time.Millisecond).Should(BeNil())
		Eventually(tenantStatus(t), 20*time.Second, 100*time.Millisecond).Should(HaveField("RemovalBudget",
			HaveValue(And(HaveField("AllowRemovalsUsed", "7"), HaveField("Waiting", BeEquivalentTo(0)), HaveField("Allowance", BeEquivalentTo(0))))))
		Expect(s.Stats().Count(cipherscale.RouteDeactivateUser)).To(Equal(12), "no user deactivated twice")
	})
})
