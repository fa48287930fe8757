package controller_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// writesOf counts the writes a simulator served.
func writesOf(s *simulator.Server) int {
	st := s.Stats()
	n := 0
	for _, r := range writeRoutes {
		n += st.Count(r)
	}
	return n
}

// labelNamespace sets the labels of a namespace.
func labelNamespace(name string, labels map[string]string) {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	update(ns, func() { ns.Labels = labels })
}

func withRoles(roles ...string) func(*iamv1alpha1.CipherscaleUser) {
	return func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Roles = ids(roles...) }
}

func adminRoleOf(s *simulator.Server) string {
	GinkgoHelper()
	r, err := s.AddRole(simulator.RoleSeed{Name: uniq("Admin"), Type: cipherscale.RoleTypeAdmin})
	Expect(err).NotTo(HaveOccurred())
	return r.ID
}

// The suite's flags let every plain namespace adopt and grant privileged roles in the default
// tenant; a tenant object's objects follow the tenant's spec instead.
var _ = Describe("Trust rules of a tenant object", func() {
	It("a ClusterCipherscaleTenant adopts and grants privileged roles only from the namespaces its selectors select", func() {
		other, url := newTenantSim()
		x, y := newNamespace(), newNamespace()
		use, trusted := uniq("use"), uniq("trusted")
		labelNamespace(x, map[string]string{"use": use, "trusted": trusted})
		labelNamespace(y, map[string]string{"use": use})
		newSecret(x, "cluster-key", map[string]string{"api-key": otherKey})
		byLabel := func(k, v string) *metav1.LabelSelector {
			return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
		}
		ct := &iamv1alpha1.ClusterCipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Name: uniq("trusting")},
			Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
				APIKeySecretRef:   iamv1alpha1.NamespacedSecretKeyReference{Namespace: x, Name: "cluster-key"},
				NamespaceSelector: byLabel("use", use),
				Adoption:          &iamv1alpha1.AdoptionSpec{NamespaceSelector: byLabel("trusted", trusted)},
				TenantSettings: iamv1alpha1.TenantSettings{URL: url,
					Privileged: &iamv1alpha1.PrivilegedSpec{NamespaceSelector: byLabel("trusted", trusted)}},
			},
		}
		allowTenant(x, "cluster-key", "ClusterCipherscaleTenant/"+ct.Name)
		Expect(k8s.Create(ctx, ct)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, ct))).To(Succeed()) })
		expectTenantReady(ct)
		onCT := onTenant(iamv1alpha1.KindClusterCipherscaleTenant, ct.Name)
		existing, err := other.AddUser(simulator.UserSeed{Email: email("existing"), Status: cipherscale.StatusActive, FirstName: "Ada"})
		Expect(err).NotTo(HaveOccurred())
		admin := adminRoleOf(other)

		By("from Y, which spec.adoption does not select: refused, nothing written")
		before := writesOf(other)
		fromY := newUser(y, "adopter", existing.Email, onCT, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.FirstName = ptr("Mallory") })
		expectStalled(fromY, iamv1alpha1.ReasonAdoptionNotAllowed)
		Expect(stalledMessage(fromY)).To(SatisfyAll(ContainSubstring("spec.adoption.namespaceSelector"), ContainSubstring(ct.Name)))
		Expect(fromY.Status.ID).To(BeEmpty())
		Expect(fromY.Annotations).NotTo(HaveKey(iamv1alpha1.AnnotationUserID))

		By("from Y, a privileged role: refused before anyone is created")
		mail := email("grant-y")
		grantY := newUser(y, "grant", mail, onCT, withRoles(admin))
		expectStalled(grantY, iamv1alpha1.ReasonNotAllowed)
		Expect(stalledMessage(grantY)).To(SatisfyAll(ContainSubstring(plan.NormalizeID(admin)), ContainSubstring("spec.privileged.namespaceSelector")))
		Consistently(func() int { return writesOf(other) }, resync).Should(Equal(before), "the tenant was written")
		Expect(countEmail(other, mail)).To(BeZero())
		now, ok := other.UserByEmail(existing.Email)
		Expect(ok).To(BeTrue())
		Expect(now.FirstName).To(Equal("Ada"))

		By("from X, which both select: the existing user is adopted, and the role granted")
		Expect(k8s.Delete(ctx, fromY)).To(Succeed())
		expectGone(fromY)
		fromX := newUser(x, "adopter", existing.Email, onCT)
		expectReady(fromX)
		Expect(fromX.Status.ID).To(Equal(existing.ID))
		Expect(countEmail(other, existing.Email)).To(Equal(1))
		mailX := email("grant-x")
		grantX := newUser(x, "grant", mailX, onCT, withRoles(admin))
		expectReady(grantX)
		granted, ok := other.UserByEmail(mailX)
		Expect(ok).To(BeTrue())
		Expect(roleIDs(granted)).To(Equal([]string{admin}))
	})

	It("a CipherscaleTenant adopts from its own namespace, and grants privileged roles there until spec.privileged leaves it out", func() {
		other, url := newTenantSim()
		// The suite's flags let this namespace neither adopt nor grant privileged roles.
		ns := newPrefixedNamespace(untrustedPrefix)
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		qa := newNamespacedTenant(ns, "qa", url, "key")
		expectTenantReady(qa)
		onQA := onTenant(iamv1alpha1.KindCipherscaleTenant, "qa")
		existing, err := other.AddUser(simulator.UserSeed{Email: email("existing"), Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		admin := adminRoleOf(other)

		adopted := newUser(ns, "adopted", existing.Email, onQA)
		expectReady(adopted)
		Expect(adopted.Status.ID).To(Equal(existing.ID))
		mail := email("granted")
		granted := newUser(ns, "granted", mail, onQA, withRoles(admin))
		expectReady(granted)
		u, ok := other.UserByEmail(mail)
		Expect(ok).To(BeTrue())
		Expect(roleIDs(u)).To(Equal([]string{admin}))

		By("spec.privileged selecting other namespaces only: a new grant is refused")
		update(qa, func() {
			qa.Spec.Privileged = &iamv1alpha1.PrivilegedSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"admins": "yes"}}}
		})
		mail2 := email("refused")
		refused := newUser(ns, "refused", mail2, onQA, withRoles(admin))
		expectStalled(refused, iamv1alpha1.ReasonNotAllowed)
		Expect(stalledMessage(refused)).To(ContainSubstring(`CipherscaleTenant "qa"`))
		Consistently(func() int { return countEmail(other, mail2) }, resync).Should(BeZero())
	})
})
