package controller_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// removalsWaitingMetric reads cipherscale_removals_waiting{tenant="ClusterCipherscaleTenant/default"} from the registry
// the operator in this process serves.
func removalsWaitingMetric() float64 {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "cipherscale_removals_waiting" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == "ClusterCipherscaleTenant/default" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// The operator of this suite shares one tenant and one budget with every spec, and the budget
// counts every removal of the last hour: the spec sets the limit to what was spent plus 3, and
// runs alone.
var _ = Describe("The removal budget", Serial, func() {
	It("removes at most the budget's worth of users at once; the rest wait, finalizers held, until a person allows them", func() {
		ns := newNamespace()
		budget := operator.Tenants.Budget(tenant.ClusterKey(tenant.DefaultName))
		def := &iamv1alpha1.ClusterCipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Name: tenant.DefaultName}}
		setPerHour := func(n int) {
			update(def, func() { def.Spec.RemovalBudget = &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(n))} })
			Eventually(func() int { return budget.Status().PerHour }, 10*time.Second, 50*time.Millisecond).Should(Equal(n))
		}
		DeferCleanup(func() {
			setPerHour(0)
			update(def, func() { delete(def.Annotations, iamv1alpha1.AnnotationAllowRemovals) })
		})

		var objs []*iamv1alpha1.CipherscaleUser
		var mails []string
		for range 6 {
			mail := email("budget")
			mails = append(mails, mail)
			objs = append(objs, newUser(ns, uniq("b"), mail))
		}
		for _, o := range objs {
			expectReady(o)
		}
		deleted, kept := objs[:5], objs[5]

		By("a budget of 3 and 5 objects deleted at once")
		setPerHour(budget.Status().Spent + 3)
		deletesBefore := sim.Stats().Count("DELETE /tenants/users/{id}")
		for _, o := range deleted {
			Expect(k8s.Delete(ctx, o)).To(Succeed())
		}
		remaining := func() int {
			n := 0
			for _, m := range mails[:5] {
				n += usersWithEmail(m)
			}
			return n
		}
		waiting := func() []*iamv1alpha1.CipherscaleUser {
			var out []*iamv1alpha1.CipherscaleUser
			for _, o := range deleted {
				if k8s.Get(ctx, client.ObjectKeyFromObject(o), o) == nil {
					out = append(out, o)
				}
			}
			return out
		}
		Eventually(waiting, 20*time.Second, 100*time.Millisecond).Should(HaveLen(2))
		Eventually(remaining, 5*time.Second, 100*time.Millisecond).Should(Equal(2))
		Consistently(remaining, time.Second, 100*time.Millisecond).Should(Equal(2))
		for _, o := range waiting() {
			Expect(o.Finalizers).To(ContainElement(iamv1alpha1.Finalizer))
			Eventually(conditionOf(o, iamv1alpha1.ConditionReconciling), 10*time.Second, 100*time.Millisecond).
				Should(haveCondition(o, metav1.ConditionTrue, iamv1alpha1.ReasonRemovalBudgetExceeded))
			Expect(eventReasons(o)).To(ContainElement(iamv1alpha1.ReasonRemovalBudgetExceeded))
		}
		Expect(sim.Stats().Count("DELETE /tenants/users/{id}") - deletesBefore).To(Equal(3))
		Eventually(removalsWaitingMetric, 5*time.Second, 100*time.Millisecond).Should(BeEquivalentTo(2))

		By("active: false waits as well")
		update(kept, func() { kept.Spec.Active = ptr(false) })
		Eventually(conditionOf(kept, iamv1alpha1.ConditionReconciling), 10*time.Second, 100*time.Millisecond).
			Should(haveCondition(kept, metav1.ConditionTrue, iamv1alpha1.ReasonRemovalBudgetExceeded))
		Expect(tenantUser(mails[5]).Status.Normalized()).NotTo(Equal(cipherscale.StatusInactive))

		By("the default tenant's status says so")
		Eventually(func() *iamv1alpha1.TenantRemovalBudgetStatus {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(def), def)
			return def.Status.RemovalBudget
		}, 10*time.Second, 100*time.Millisecond).Should(HaveField("Waiting", BeEquivalentTo(3)))

		By("a person allows 3 more removals on the default tenant")
		update(def, func() { metav1.SetMetaDataAnnotation(&def.ObjectMeta, iamv1alpha1.AnnotationAllowRemovals, "3") })
		Eventually(waiting, 20*time.Second, 100*time.Millisecond).Should(BeEmpty())
		Expect(remaining()).To(Equal(0))
		Eventually(func() cipherscale.Status { return tenantUser(mails[5]).Status.Normalized() }, 10*time.Second, 100*time.Millisecond).
			Should(Equal(cipherscale.StatusInactive))
		expectReady(kept)
		Expect(sim.Stats().Count("DELETE /tenants/users/{id}") - deletesBefore).To(Equal(5))
		Expect(removalsWaitingMetric()).To(BeEquivalentTo(0))
		Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(def), def)
			if def.Status.RemovalBudget == nil {
				return ""
			}
			return def.Status.RemovalBudget.AllowRemovalsUsed
		}, 5*time.Second, 100*time.Millisecond).Should(Equal("3"))
	})
})

// Attack 6 of issue 21 and one namespace holding every other's offboarding: on a tenant object,
// a budget that trips stays tripped; an allowance releases the removals waiting when it is
// granted, and nothing else (allow-removals=20 to release one let 10 later deletions through);
// an allowance for one namespace releases that namespace's, while another's mass deletion
// stays held; the tenant's status says which namespaces wait.
var _ = Describe("The removal budget of a tenant object", func() {
	It("stays tripped; an allowance releases only the removals waiting when it is granted, of one namespace when it says so", func() {
		label := uniq("budget")
		evil, teamB, keyNS := newNamespace(), newNamespace(), newNamespace()
		for _, ns := range []string{evil, teamB} {
			labelNamespace(ns, map[string]string{"budget": label})
		}
		tsim, url := newTenantSim()
		newSecret(keyNS, "key", map[string]string{"api-key": otherKey})
		tn := newClusterTenant(url, keyNS, "key", &metav1.LabelSelector{MatchLabels: map[string]string{"budget": label}})
		update(tn, func() { tn.Spec.RemovalBudget = &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(2))} })
		expectTenantReady(tn)
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: tn.Name}
		users := func(ns string, n int) []*iamv1alpha1.CipherscaleUser {
			var out []*iamv1alpha1.CipherscaleUser
			for range n {
				out = append(out, newUser(ns, uniq("u"), email("budget"), func(u *iamv1alpha1.CipherscaleUser) {
					u.Spec.TenantRef = ref
					u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
				}))
			}
			return out
		}
		evils, team := users(evil, 4), users(teamB, 2)
		for _, o := range append(append([]*iamv1alpha1.CipherscaleUser{}, evils...), team...) {
			expectReady(o)
		}
		deletes := func() int { return tsim.Stats().Count(cipherscale.RouteDeleteUser) }
		gone := func(o *iamv1alpha1.CipherscaleUser) bool {
			return k8s.Get(ctx, client.ObjectKeyFromObject(o), &iamv1alpha1.CipherscaleUser{}) != nil
		}
		left := func(objs []*iamv1alpha1.CipherscaleUser) func() int {
			return func() int {
				n := 0
				for _, o := range objs {
					if !gone(o) {
						n++
					}
				}
				return n
			}
		}
		status := func() iamv1alpha1.TenantStatus {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(tn), tn)
			return tn.Status
		}

		By("a mass deletion in one namespace trips the budget of 2, and team-b's offboarding waits behind it")
		for _, o := range evils {
			Expect(k8s.Delete(ctx, o)).To(Succeed())
		}
		Eventually(left(evils), 20*time.Second, 100*time.Millisecond).Should(Equal(2))
		Expect(k8s.Delete(ctx, team[0])).To(Succeed())
		Eventually(func(g Gomega) {
			st := status()
			g.Expect(st.RemovalBudget).NotTo(BeNil())
			g.Expect(st.RemovalBudget.TrippedAt).NotTo(BeNil())
			g.Expect(st.RemovalBudget.Waiting).To(BeEquivalentTo(3))
			g.Expect(st.RemovalBudget.WaitingByNamespace).To(Equal([]iamv1alpha1.NamespaceRemovals{
				{Namespace: evil, Waiting: 2}, {Namespace: teamB, Waiting: 1}}))
			g.Expect(st.RemovalHold).NotTo(BeNil())
			g.Expect(st.RemovalHold.Waiting).To(HaveLen(3))
			c := meta.FindStatusCondition(st.Conditions, iamv1alpha1.ConditionStalled)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(iamv1alpha1.ReasonRemovalBudgetExceeded))
			g.Expect(c.Message).To(ContainSubstring(fmt.Sprintf("%s 2, %s 1", evil, teamB)))
		}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(deletes()).To(Equal(2))

		By("allow-removals 20 for team-b releases team-b's one waiting removal, and nothing of evil's")
		update(tn, func() {
			tn.Annotations = map[string]string{iamv1alpha1.AnnotationAllowRemovals: "20", iamv1alpha1.AnnotationAllowRemovalsNamespace: teamB}
		})
		Eventually(func() bool { return gone(team[0]) }, 20*time.Second, 100*time.Millisecond).Should(BeTrue())
		Consistently(left(evils), 2*time.Second, 100*time.Millisecond).Should(Equal(2))
		Expect(deletes()).To(Equal(3))

		By("the other 19 lapsed: team-b's next deletion waits; so does a later one in evil")
		Expect(k8s.Delete(ctx, team[1])).To(Succeed())
		Eventually(conditionOf(team[1], iamv1alpha1.ConditionReconciling), 10*time.Second, 100*time.Millisecond).
			Should(haveCondition(team[1], metav1.ConditionTrue, iamv1alpha1.ReasonRemovalBudgetExceeded))
		Consistently(func() bool { return gone(team[1]) }, 2*time.Second, 100*time.Millisecond).Should(BeFalse())
		Expect(deletes()).To(Equal(3))
		Eventually(func(g Gomega) {
			st := status()
			g.Expect(st.RemovalBudget.AllowRemovalsUsed).To(Equal("20@" + teamB))
			g.Expect(st.RemovalBudget.Allowance).To(BeZero())
			g.Expect(st.RemovalBudget.Waiting).To(BeEquivalentTo(3))
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())

		By("allow-removals 3 for the whole tenant releases the three that wait; the trip clears")
		update(tn, func() { tn.Annotations = map[string]string{iamv1alpha1.AnnotationAllowRemovals: "3"} })
		Eventually(left(evils), 20*time.Second, 100*time.Millisecond).Should(Equal(0))
		Eventually(func() bool { return gone(team[1]) }, 20*time.Second, 100*time.Millisecond).Should(BeTrue())
		Expect(deletes()).To(Equal(6))
		Eventually(func(g Gomega) {
			st := status()
			g.Expect(meta.FindStatusCondition(st.Conditions, iamv1alpha1.ConditionStalled)).To(BeNil())
			g.Expect(st.RemovalBudget.TrippedAt).To(BeNil())
			g.Expect(st.RemovalBudget.Waiting).To(BeZero())
		}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	})
})
