package reliability

import (
	"fmt"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// tenantStalledBound is how soon after a mass deletion the tenant object must say that removals
// wait: its reconciler is woken when removals start waiting (about a second), not at its
// resync. Generous, for a loaded 2-core CI machine.
const tenantStalledBound = 20 * time.Second

var _ = Describe("mass deletion on a tenant object", func() {
	It("removes 50 of 300 users of a CipherscaleTenant with perHour 50, says so on the tenant within seconds (the budget tripped, recorded in its status), still after a SIGKILL and restart, and lets the rest go on allow-removals, each removed once", func() {
		const test, n, perHour = "mass deletion on a CipherscaleTenant", 300, 50
		defaultSim, tenantSim := startSim(), startSim()
		ns := newNamespace("mass-tenant")

		By("a tenant with 5 users no object declares, and a CipherscaleTenant with removalBudget.perHour 50")
		for i := range 5 {
			_, err := tenantSim.AddUser(simulator.UserSeed{Email: fmt.Sprintf("console-%d-%d@example.com", next(), i), Status: cipherscale.StatusActive})
			Expect(err).NotTo(HaveOccurred())
		}
		var undeclared []string
		for _, u := range tenantSim.Users() {
			undeclared = append(undeclared, cipherscale.NormalizeEmail(u.Email))
		}
		sort.Strings(undeclared)
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "key",
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/people"}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())
		budget := int32(perHour)
		tn := &iamv1alpha1.CipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "people"},
			Spec: iamv1alpha1.CipherscaleTenantSpec{
				APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: "key"},
				TenantSettings: iamv1alpha1.TenantSettings{URL: tenantSim.URL,
					RemovalBudget: &iamv1alpha1.RemovalBudgetSpec{PerHour: &budget},
					// The rate the manager's --qps and --burst gave every tenant before they became
					// tenant fields.
					RequestsPerSecond: ptr(int32(1000)), Burst: ptr(int32(200)),
					// Far longer than the spec: the tenant's status can follow the removals only
					// because its reconciler is woken when they start or stop waiting.
					ResyncInterval: &metav1.Duration{Duration: 10 * time.Minute}},
			},
		}
		Expect(k8s.Create(ctx, tn)).To(Succeed())
		// The default tenant's budget (25 an hour) is not this tenant's: its own spec is.
		cfg := managerConfig{name: "manager", apiURL: defaultSim.URL, namespaces: []string{ns},
			tenant: rate(1000, 200)}
		m := startManager(cfg)
		tenantStatus := func() iamv1alpha1.TenantStatus {
			t := &iamv1alpha1.CipherscaleTenant{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(tn), t); err != nil {
				return iamv1alpha1.TenantStatus{}
			}
			return t.Status
		}
		Eventually(func() bool { return meta.IsStatusConditionTrue(tenantStatus().Conditions, iamv1alpha1.ConditionReady) },
			30*time.Second, 100*time.Millisecond).Should(BeTrue())

		users := makeUsers(ns, "p", n, nil, nil, false)
		objs := userObjects(users)
		for _, o := range objs {
			u := o.(*iamv1alpha1.CipherscaleUser)
			u.Spec.TenantRef = &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: tn.Name}
			u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		}
		createAll(objs)
		waitAllReady(2*time.Minute, n, ns)
		Expect(tenantSim.Users()).To(HaveLen(n + len(undeclared)))

		declaredLeft := func() int { return usersLeft(tenantSim, users) }
		waiting := func() (objects, withReason int) { return removalsWaiting(ns) }
		// tenantSaysWaiting checks the tenant object: Stalled with RemovalBudgetExceeded, its
		// message and status.removalBudget.waiting saying n-perHour.
		tenantSaysWaiting := func(g Gomega) {
			st := tenantStatus()
			c := meta.FindStatusCondition(st.Conditions, iamv1alpha1.ConditionStalled)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(iamv1alpha1.ReasonRemovalBudgetExceeded))
			g.Expect(c.Message).To(ContainSubstring(fmt.Sprintf("%d removals wait", n-perHour)))
			g.Expect(st.RemovalBudget).NotTo(BeNil())
			g.Expect(st.RemovalBudget.Waiting).To(BeEquivalentTo(n - perHour))
			g.Expect(st.RemovalBudget.Spent).To(BeEquivalentTo(perHour))
			// The budget tripped: the record of the trip and of what waits is in the status,
			// where a restarted manager finds it.
			g.Expect(st.RemovalBudget.TrippedAt).NotTo(BeNil())
			g.Expect(st.RemovalHold).NotTo(BeNil())
			g.Expect(st.RemovalHold.TrippedAt).NotTo(BeNil())
			g.Expect(st.RemovalHold.Waiting).To(HaveLen(n - perHour))
		}

		By("deleting all 300 objects at once")
		start := time.Now()
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(ns))).To(Succeed())
		Eventually(func() string {
			if c := meta.FindStatusCondition(tenantStatus().Conditions, iamv1alpha1.ConditionStalled); c != nil {
				return c.Reason
			}
			return ""
		}, tenantStalledBound, 50*time.Millisecond).Should(Equal(iamv1alpha1.ReasonRemovalBudgetExceeded))
		firstStalled := time.Since(start)
		Eventually(tenantSaysWaiting, tenantStalledBound, 50*time.Millisecond).Should(Succeed())
		tenantStalled := time.Since(start)
		Eventually(func(g Gomega) {
			objs, reason := waiting()
			g.Expect(objs).To(Equal(n - perHour))
			g.Expect(reason).To(Equal(n - perHour))
		}, time.Minute, 100*time.Millisecond).Should(Succeed())
		objectsWaiting := time.Since(start)
		Expect(declaredLeft()).To(Equal(n - perHour))
		Expect(deletes2xx(tenantSim.Stats())).To(Equal(perHour))
		figure(test, "stopped", fmt.Sprintf("%d removed; tenant Stalled/%s %s after the deletion, saying %d wait %s after it (bound %s); %d objects waiting with the reason and their finalizers %s after it",
			n-declaredLeft(), iamv1alpha1.ReasonRemovalBudgetExceeded, firstStalled.Round(10*time.Millisecond), n-perHour, tenantStalled.Round(10*time.Millisecond), tenantStalledBound,
			n-perHour, objectsWaiting.Round(10*time.Millisecond)))

		By("SIGKILL of the manager in the middle of the mass deletion, and a restart")
		asked := killAndRestart(m, cfg, tenantSim, users, perHour)
		Eventually(func(g Gomega) {
			objs, reason := waiting()
			g.Expect(objs).To(Equal(n - perHour))
			g.Expect(reason).To(Equal(n - perHour))
			tenantSaysWaiting(g)
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(deletes2xx(tenantSim.Stats())).To(Equal(perHour))
		figure(test, "restart", fmt.Sprintf("after a SIGKILL and a restart, the %d waiting objects asked again within %s of the restart, and still %d removed, %d waiting (status.removalBudget.spent %d, restored from status.removalsByMinute)",
			n-perHour, asked.Round(10*time.Millisecond), n-declaredLeft(), n-perHour, tenantStatus().RemovalBudget.Spent))

		By("a person allows the rest on the tenant")
		release := time.Now()
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tn), tn)).To(Succeed())
		tn.Annotations = map[string]string{iamv1alpha1.AnnotationAllowRemovals: fmt.Sprint(n - perHour)}
		Expect(k8s.Update(ctx, tn)).To(Succeed())
		Eventually(func() int { objs, _ := waiting(); return objs }, time.Minute, 100*time.Millisecond).Should(Equal(0))
		released := time.Since(release)
		Expect(declaredLeft()).To(Equal(0))
		var left []string
		for _, u := range tenantSim.Users() {
			left = append(left, cipherscale.NormalizeEmail(u.Email))
		}
		sort.Strings(left)
		Expect(left).To(Equal(undeclared), "the tenant's users are exactly the ones no object declared")
		st := tenantSim.Stats()
		Expect(deletes2xx(st)).To(Equal(n), statsSummary(st))
		Eventually(func(g Gomega) {
			s := tenantStatus()
			g.Expect(meta.FindStatusCondition(s.Conditions, iamv1alpha1.ConditionStalled)).To(BeNil())
			g.Expect(s.RemovalBudget).NotTo(BeNil())
			g.Expect(s.RemovalBudget.Waiting).To(BeZero())
			g.Expect(s.RemovalBudget.AllowRemovalsUsed).To(Equal(fmt.Sprint(n - perHour)))
			g.Expect(s.RemovalBudget.TrippedAt).To(BeNil())
			g.Expect(s.RemovalHold).NotTo(BeNil())
			g.Expect(s.RemovalHold.TrippedAt).To(BeNil())
			g.Expect(s.RemovalHold.Waiting).To(BeEmpty())
			g.Expect(s.RemovalHold.Released).To(BeEmpty())
		}, tenantStalledBound, 100*time.Millisecond).Should(Succeed())
		figure(test, "released", fmt.Sprintf("the other %d removed %s after allow-removals was set, the tenant no longer Stalled %s after it; DELETE 2xx %d for %d users; %s",
			n-perHour, released.Round(10*time.Millisecond), time.Since(release).Round(10*time.Millisecond), deletes2xx(st), n, statsSummary(st)))
	})
})
