package gitops_test

import (
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

const qaKey = "gitops-qa-api-key-5c6d"

// qaTenant creates a CipherscaleTenant of ns served by a simulator of its own, its key in the
// Secret secret (created only when withSecret).
func qaTenant(ns, secret string, withSecret bool) *iamv1alpha1.CipherscaleTenant {
	GinkgoHelper()
	srv := httptest.NewServer(simulator.New(qaKey))
	DeferCleanup(srv.Close)
	if withSecret {
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret,
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/qa"}},
			StringData: map[string]string{"api-key": qaKey}})).To(Succeed())
	}
	t := &iamv1alpha1.CipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qa"},
		Spec: iamv1alpha1.CipherscaleTenantSpec{
			APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: secret},
			TenantSettings:  iamv1alpha1.TenantSettings{URL: srv.URL},
		},
	}
	Expect(k8s.Create(ctx, t)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, t))).To(Succeed()) })
	return t
}

var _ = Describe("the health GitOps tools read from tenant objects and the objects that name them", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("a tenant whose key works is Current, Healthy and passes kubectl wait", func() {
		t := qaTenant(ns, "qa-key", true)
		eventuallyCondition(t, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		h := expectHealth(t, status.CurrentStatus, "Healthy", true)
		Expect(h.argoMessage).To(HavePrefix(iamv1alpha1.ReasonUpToDate + ": "))
	})

	It("a tenant whose Secret is missing is Failed and Degraded, with the operator's message", func() {
		t := qaTenant(ns, "absent", false)
		eventuallyCondition(t, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonInvalidSecret)
		h := expectHealth(t, status.FailedStatus, "Degraded", false)
		Expect(h.argoMessage).To(HavePrefix(iamv1alpha1.ReasonInvalidSecret + ": "))
		Expect(h.kstatusMessage).To(ContainSubstring("absent"))
	})

	It("a CipherscaleUser naming a tenant it may not use is Failed and Degraded, naming the rule", func() {
		u := newUser(ns, "lost", email("lost"), func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.TenantRef = &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "nowhere"}
		})
		eventuallyCondition(u, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, iamv1alpha1.ReasonInvalidTenant)
		h := expectHealth(u, status.FailedStatus, "Degraded", false)
		Expect(h.argoMessage).To(HavePrefix(iamv1alpha1.ReasonInvalidTenant + ": "))
		Expect(h.argoMessage).To(ContainSubstring("usable only from its own namespace"))
	})

	It("a CipherscaleUser of a namespaced tenant is Current and Healthy once both are Ready", func() {
		t := qaTenant(ns, "qa-key", true)
		u := newUser(ns, "qa-user", email("qa"), func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.TenantRef = &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}
		})
		eventuallyCondition(t, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		eventuallyCondition(u, iamv1alpha1.ConditionReady, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate)
		expectHealth(u, status.CurrentStatus, "Healthy", true)
		expectHealth(t, status.CurrentStatus, "Healthy", true)
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(u), u) }).ShouldNot(Succeed())
	})
})
