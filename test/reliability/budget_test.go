package reliability

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// deletes2xx counts the simulator's successful DELETE calls.
func deletes2xx(st simulator.Stats) int {
	n := 0
	for _, r := range st.Requests {
		if r.Route == "DELETE /tenants/users/{id}" && r.Status >= 200 && r.Status < 300 {
			n += r.Count
		}
	}
	return n
}

// usersLeft counts the tenant users that have the emails of specs.
func usersLeft(sim *simEnv, specs []userSpec) int {
	counts, _ := sim.usersByEmail()
	left := 0
	for _, u := range specs {
		left += counts[cipherscale.NormalizeEmail(u.Email)]
	}
	return left
}

// removalsWaiting counts the CipherscaleUsers left in ns, and those of them Reconciling with
// RemovalBudgetExceeded and their finalizer held.
func removalsWaiting(ns string) (objects, withReason int) {
	var list iamv1alpha1.CipherscaleUserList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return -1, -1
	}
	for _, u := range list.Items {
		c := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReconciling)
		if c != nil && c.Status == metav1.ConditionTrue && c.Reason == iamv1alpha1.ReasonRemovalBudgetExceeded &&
			strings.Contains(strings.Join(u.Finalizers, ","), iamv1alpha1.Finalizer) {
			withReason++
		}
	}
	return len(list.Items), withReason
}

// killAndRestart SIGKILLs the manager in the middle of a mass deletion of specs' objects and
// starts it again with cfg. Every waiting object asks again (it reads its user by id before it
// asks the budget), and for 3 s after that still exactly removed users are deleted. It returns
// how soon after the restart the waiting objects asked.
func killAndRestart(m *manager, cfg managerConfig, sim *simEnv, specs []userSpec, removed int) time.Duration {
	GinkgoHelper()
	m.Kill()
	getsBefore := sim.Stats().Count(cipherscale.RouteGetUser)
	restart := time.Now()
	startManager(cfg)
	Eventually(func() int { return sim.Stats().Count(cipherscale.RouteGetUser) - getsBefore },
		time.Minute, 100*time.Millisecond).Should(BeNumerically(">=", len(specs)-removed))
	asked := time.Since(restart)
	Consistently(func(g Gomega) {
		g.Expect(deletes2xx(sim.Stats())).To(Equal(removed))
		g.Expect(usersLeft(sim, specs)).To(Equal(len(specs) - removed))
	}, 3*time.Second, 100*time.Millisecond).Should(Succeed())
	return asked
}

// defaultTenantStatus reads the status of ClusterCipherscaleTenant/default.
func defaultTenantStatus() iamv1alpha1.TenantStatus {
	def := &iamv1alpha1.ClusterCipherscaleTenant{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: "default"}, def); err != nil {
		return iamv1alpha1.TenantStatus{}
	}
	return def.Status
}

var _ = Describe("mass deletion", func() {
	It("removes 50 of 300 users deleted at once with the default tenant's spec.removalBudget.perHour 50, holds 250 through a SIGKILL and restart until allow-removals on the tenant lets them go, each removed once", func() {
		const test, n, budget = "mass deletion", 300, 50
		sim := startSim()
		ns := newNamespace("mass")
		users := makeUsers(ns, "m", n, nil, nil, false)
		cfg := managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns},
			tenant: func(t *iamv1alpha1.ClusterCipherscaleTenant) {
				rate(1000, 200)(t)
				t.Spec.RemovalBudget = &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(budget))}
			}}
		m := startManager(cfg)
		createAll(userObjects(users))
		waitAllReady(time.Minute, n, ns)
		Expect(sim.Users()).To(HaveLen(n))

		By("deleting all 300 objects at once")
		start := time.Now()
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(ns))).To(Succeed())
		declared := func() int { return usersLeft(sim, users) }
		waitingWithReason := func() (objects, withReason int) { return removalsWaiting(ns) }
		Eventually(func(g Gomega) {
			objs, reason := waitingWithReason()
			g.Expect(objs).To(Equal(n - budget))
			g.Expect(reason).To(Equal(n - budget))
		}, time.Minute, 100*time.Millisecond).Should(Succeed())
		stopped := time.Since(start)
		Expect(declared()).To(Equal(n - budget))
		Consistently(declared, 2*time.Second, 100*time.Millisecond).Should(Equal(n - budget))
		Expect(deletes2xx(sim.Stats())).To(Equal(budget))
		figure(test, "stopped", fmt.Sprintf("%d removed, %d objects waiting with %s and their finalizers, %s after the deletion",
			n-declared(), n-budget, iamv1alpha1.ReasonRemovalBudgetExceeded, stopped.Round(10*time.Millisecond)))

		By("the default tenant's status says so, as every tenant's does")
		Eventually(func() *iamv1alpha1.TenantRemovalBudgetStatus { return defaultTenantStatus().RemovalBudget },
			30*time.Second, 100*time.Millisecond).Should(And(HaveField("Spent", BeEquivalentTo(budget)), HaveField("Waiting", BeEquivalentTo(n-budget))))

		By("SIGKILL of the manager and a restart: the tenant's status kept the hour")
		asked := killAndRestart(m, cfg, sim, users, budget)
		spent := 0
		for _, m := range defaultTenantStatus().RemovalsByMinute {
			spent += int(m.Count)
		}
		Expect(spent).To(Equal(budget), "status.removalsByMinute of the default tenant")
		figure(test, "restart", fmt.Sprintf("after a SIGKILL and a restart, the %d waiting objects asked again within %s, and still %d removed (the hour restored from the default tenant's status.removalsByMinute)",
			n-budget, asked.Round(10*time.Millisecond), n-declared()))

		By("a person allows the rest on the default tenant")
		release := time.Now()
		def := &iamv1alpha1.ClusterCipherscaleTenant{}
		Eventually(func() error {
			if err := k8s.Get(ctx, client.ObjectKey{Name: "default"}, def); err != nil {
				return err
			}
			metav1.SetMetaDataAnnotation(&def.ObjectMeta, iamv1alpha1.AnnotationAllowRemovals, fmt.Sprint(n-budget))
			return k8s.Update(ctx, def)
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
		Eventually(func() int { objs, _ := waitingWithReason(); return objs }, time.Minute, 100*time.Millisecond).Should(Equal(0))
		Expect(declared()).To(Equal(0))
		Expect(sim.Users()).To(BeEmpty())
		st := sim.Stats()
		Expect(deletes2xx(st)).To(Equal(n), statsSummary(st))
		Eventually(func() *iamv1alpha1.TenantRemovalBudgetStatus { return defaultTenantStatus().RemovalBudget },
			30*time.Second, 100*time.Millisecond).Should(HaveField("AllowRemovalsUsed", fmt.Sprint(n-budget)))
		figure(test, "released", fmt.Sprintf("the other %d removed %s after allow-removals was set; DELETE 2xx %d for %d users; %s",
			n-budget, time.Since(release).Round(10*time.Millisecond), deletes2xx(st), n, statsSummary(st)))
	})
})
