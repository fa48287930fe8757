package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// removalsWaitingMetric reads cipherscale_removals_waiting{tenant="default"} from the registry
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
				if l.GetName() == "tenant" && l.GetValue() == "default" {
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
		budget := operator.Tenant.RemovalBudget()
		DeferCleanup(func() { budget.SetPerHour(0) })
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: devenv.AllowRemovalsConfigMap.Namespace, Name: devenv.AllowRemovalsConfigMap.Name}}
		Expect(k8s.Create(ctx, cm)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, cm))).To(Succeed()) })

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
		budget.SetPerHour(budget.Status().Spent + 3)
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

		By("a person allows 3 more removals")
		update(cm, func() { cm.Annotations = map[string]string{iamv1alpha1.AnnotationAllowRemovals: "3"} })
		Eventually(waiting, 20*time.Second, 100*time.Millisecond).Should(BeEmpty())
		Expect(remaining()).To(Equal(0))
		Eventually(func() cipherscale.Status { return tenantUser(mails[5]).Status.Normalized() }, 10*time.Second, 100*time.Millisecond).
			Should(Equal(cipherscale.StatusInactive))
		expectReady(kept)
		Expect(sim.Stats().Count("DELETE /tenants/users/{id}") - deletesBefore).To(Equal(5))
		Expect(removalsWaitingMetric()).To(BeEquivalentTo(0))
		Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(cm), cm)
			return cm.Annotations[iamv1alpha1.AnnotationAllowRemovalsGranted]
		}, 5*time.Second, 100*time.Millisecond).Should(Equal("3"))
	})
})
