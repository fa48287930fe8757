package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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
