package gitops_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// unknownID is a well-formed id that names nothing in the tenant.
const unknownID = "00000000-0000-4000-8000-00000000dead"

// served reads the object as the API server serves it to Flux, Argo CD and kubectl: JSON
// decoded into an unstructured map.
func served(obj client.Object) *unstructured.Unstructured {
	GinkgoHelper()
	gvks, _, err := k8s.Scheme().ObjectKinds(obj)
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvks[0])
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), u)).To(Succeed())
	return u
}

// health is what each GitOps tool makes of one object.
type health struct {
	kstatus         status.Status
	kstatusMessage  string
	argo            string
	argoMessage     string
	waitReadyPasses bool
}

// healthOf computes kstatus (Flux's health checks, `kubectl wait --for=jsonpath` users, cli-utils
// appliers), the Argo CD health of the Lua script, and `kubectl wait --for=condition=Ready`.
func healthOf(u *unstructured.Unstructured) health {
	GinkgoHelper()
	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	argo, msg, err := argoHealth(readScript(), u.Object)
	Expect(err).NotTo(HaveOccurred())
	return health{
		kstatus: res.Status, kstatusMessage: res.Message,
		argo: argo, argoMessage: msg,
		waitReadyPasses: kubectlWaitReady(u),
	}
}

// kubectlWaitReady is the test of `kubectl wait --for=condition=Ready` (kubectl's
// ConditionalWait): the first condition of type Ready (any case) decides; it does not count
// while its observedGeneration (or, without one, status.observedGeneration) is older than
// metadata.generation; then its status must be True.
func kubectlWaitReady(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		typ, _, _ := unstructured.NestedString(m, "type")
		if !strings.EqualFold(typ, "Ready") {
			continue
		}
		st, found, _ := unstructured.NestedString(m, "status")
		if !found {
			continue
		}
		if gen, found, _ := unstructured.NestedInt64(u.Object, "metadata", "generation"); found {
			observed, found, _ := unstructured.NestedInt64(m, "observedGeneration")
			if !found {
				observed, found, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
			}
			if found && observed < gen {
				return false
			}
		}
		return strings.EqualFold(st, "True")
	}
	return false
}

func expectHealth(obj client.Object, wantK status.Status, wantArgo string, wantReady bool) health {
	GinkgoHelper()
	h := healthOf(served(obj))
	Expect(h.kstatus).To(Equal(wantK), "kstatus of %s: %s", obj.GetName(), h.kstatusMessage)
	Expect(h.argo).To(Equal(wantArgo), "Argo CD health of %s: %s", obj.GetName(), h.argoMessage)
	Expect(h.waitReadyPasses).To(Equal(wantReady), "kubectl wait --for=condition=Ready on %s", obj.GetName())
	GinkgoWriter.Printf("%s %s: kstatus %s (%s), Argo CD %s (%s), kubectl wait Ready %v\n",
		obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), h.kstatus, h.kstatusMessage, h.argo, h.argoMessage, h.waitReadyPasses)
	return h
}

var _ = Describe("the health GitOps tools read from objects the operator reconciled", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("a Ready CipherscaleUser is Current, Healthy and passes kubectl wait", func() {
		role := seedRole("reader")
		u := newUser(ns, "jane", email("jane"), func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.FirstName = ptr("Jane")
			u.Spec.Roles = ids(role)
		})
		eventuallyCondition(u, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		h := expectHealth(u, status.CurrentStatus, "Healthy", true)
		Expect(h.argoMessage).To(ContainSubstring(iamv1alpha1.ReasonUpToDate))
	})

	It("a CipherscaleUser naming an unknown role is Failed and Degraded, with the operator's message", func() {
		u := newUser(ns, "typo", email("typo"), func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.Roles = ids(unknownID)
		})
		eventuallyCondition(u, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonInvalidReference)
		h := expectHealth(u, status.FailedStatus, "Degraded", false)
		Expect(h.argoMessage).To(HavePrefix(iamv1alpha1.ReasonInvalidReference + ": "))
		Expect(h.argoMessage).To(ContainSubstring(unknownID))
		Expect(h.kstatusMessage).To(ContainSubstring(unknownID))
	})

	It("a CipherscaleUser whose new spec is not applied yet is InProgress and Progressing, then Current and Healthy", func() {
		mail := email("change")
		u := newUser(ns, "change", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.FirstName = ptr("Before") })
		eventuallyCondition(u, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		Expect(u.Generation).To(BeEquivalentTo(1))

		By("the API refusing profile updates with 503, so the operator cannot catch up")
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteUpdateProfile, Status: 503}})
		Eventually(func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
				return err
			}
			u.Spec.FirstName = ptr("After")
			return k8s.Update(ctx, u)
		}).Should(Succeed())
		Expect(u.Generation).To(BeEquivalentTo(2))

		By("right after the update: the operator has observed generation 1 only")
		h := expectHealth(u, status.InProgressStatus, "Progressing", false)
		Expect(h.argoMessage).To(ContainSubstring("observe generation 2"))

		By("once the operator has tried and failed: Reconciling, and still generation 1 observed")
		eventuallyCondition(u, iamv1alpha1.ConditionReconciling, metav1.ConditionTrue, iamv1alpha1.ReasonAPIUnavailable)
		Expect(u.Status.ObservedGeneration).To(BeEquivalentTo(1))
		expectHealth(u, status.InProgressStatus, "Progressing", false)
		Consistently(func() status.Status { return healthOf(served(u)).kstatus }, 2*time.Second, 200*time.Millisecond).
			Should(Equal(status.InProgressStatus), "no progress while the API refuses")

		By("the API answering again")
		sim.ClearFaults()
		eventuallyCondition(u, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		Expect(u.Status.ObservedGeneration).To(BeEquivalentTo(2))
		expectHealth(u, status.CurrentStatus, "Healthy", true)
		live, ok := sim.UserByEmail(mail)
		Expect(ok).To(BeTrue())
		Expect(live.FirstName).To(Equal("After"))
	})

	It("a membership waiting for its CipherscaleUser is InProgress and Progressing, then Current and Healthy", func() {
		group := seedGroup("later")
		m := newMembership(ns, "team", group, ref("later"))
		eventuallyCondition(m, iamv1alpha1.ConditionReconciling, metav1.ConditionTrue, iamv1alpha1.ReasonWaitingForUser)
		Expect(m.Status.ObservedGeneration).To(Equal(m.Generation), "the operator observed it: Reconciling alone makes it in progress")
		h := expectHealth(m, status.InProgressStatus, "Progressing", false)
		Expect(h.argoMessage).To(HavePrefix(iamv1alpha1.ReasonWaitingForUser + ": "))

		By("the CipherscaleUser appearing")
		newUser(ns, "later", email("later"))
		eventuallyCondition(m, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		expectHealth(m, status.CurrentStatus, "Healthy", true)
	})

	It("a Ready membership is Current, Healthy and passes kubectl wait", func() {
		group := seedGroup("ready")
		mail := email("member")
		_, err := sim.AddUser(simulator.UserSeed{Email: mail})
		Expect(err).NotTo(HaveOccurred())
		m := newMembership(ns, "team", group, byEmail(mail))
		eventuallyCondition(m, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		expectHealth(m, status.CurrentStatus, "Healthy", true)
	})

	It("a membership naming an email that is not in the tenant is Failed and Degraded", func() {
		group := seedGroup("missing")
		m := newMembership(ns, "team", group, byEmail(email("nobody")))
		eventuallyCondition(m, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonUserNotFound)
		h := expectHealth(m, status.FailedStatus, "Degraded", false)
		Expect(h.argoMessage).To(HavePrefix(iamv1alpha1.ReasonUserNotFound + ": "))
	})
})
