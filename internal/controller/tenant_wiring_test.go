package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// countEmail counts the users of a simulator with the email.
func countEmail(s *simulator.Server, mail string) int {
	n := 0
	for _, u := range s.Users() {
		if normalize(u.Email) == normalize(mail) {
			n++
		}
	}
	return n
}

func onTenant(kind iamv1alpha1.TenantKind, name string) func(*iamv1alpha1.CipherscaleUser) {
	return func(u *iamv1alpha1.CipherscaleUser) {
		u.Spec.TenantRef = &iamv1alpha1.TenantReference{Kind: kind, Name: name}
	}
}

// expectGone waits until the object no longer exists: its finalizer was released.
func expectGone(obj client.Object) {
	GinkgoHelper()
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj))
	}, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "%s is gone", obj.GetName())
}

func stalledMessage(obj client.Object) string {
	c := conditionOf(obj, iamv1alpha1.ConditionStalled)()
	if c == nil {
		return ""
	}
	return c.Message
}

var _ = Describe("CipherscaleUsers of several tenants", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("are two users, one per tenant, when two tenants have the same email", func() {
		other, url := newTenantSim()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		qa := newNamespacedTenant(ns, "qa", url, "key")
		expectTenantReady(qa)

		mail := email("twice")
		onDefault := newUser(ns, "on-default", mail)
		onQA := newUser(ns, "on-qa", mail, onTenant(iamv1alpha1.KindCipherscaleTenant, "qa"))
		expectReady(onDefault)
		expectReady(onQA)
		Expect(usersWithEmail(mail)).To(Equal(1), "one user in the default tenant")
		Expect(countEmail(other, mail)).To(Equal(1), "one user in the second tenant")
		Expect(eventReasons(onDefault)).NotTo(ContainElement(iamv1alpha1.ReasonEmailConflict))
		Expect(eventReasons(onQA)).NotTo(ContainElement(iamv1alpha1.ReasonEmailConflict))
		Expect(onDefault.Status.ID).NotTo(BeEmpty())
		Expect(onQA.Status.ID).NotTo(BeEmpty())

		By("a second object of the same email on the same tenant conflicts, in that tenant only")
		// (named to sort after on-qa: the older claim wins, and two creations in one second are
		// ordered by name)
		dup := newUser(ns, "qa-dup", mail, onTenant(iamv1alpha1.KindCipherscaleTenant, "qa"))
		expectStalled(dup, iamv1alpha1.ReasonEmailConflict)
		Expect(countEmail(other, mail)).To(Equal(1))

		By("deleting each removes its own tenant's user")
		Expect(k8s.Delete(ctx, dup)).To(Succeed())
		expectGone(dup)
		Expect(k8s.Delete(ctx, onQA)).To(Succeed())
		expectGone(onQA)
		Expect(countEmail(other, mail)).To(Equal(0))
		Expect(usersWithEmail(mail)).To(Equal(1), "the default tenant's user stays")
		Expect(k8s.Delete(ctx, onDefault)).To(Succeed())
		expectGone(onDefault)
		Expect(usersWithEmail(mail)).To(Equal(0))
	})

	It("refuses a CipherscaleTenant of another namespace, naming the rule, and calls no tenant", func() {
		other, url := newTenantSim()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		qa := newNamespacedTenant(ns, "qa", url, "key")
		expectTenantReady(qa)
		before := other.Stats().Total

		elsewhere := newNamespace()
		mail := email("elsewhere")
		u := newUser(elsewhere, "borrower", mail, onTenant(iamv1alpha1.KindCipherscaleTenant, "qa"))
		expectStalled(u, iamv1alpha1.ReasonInvalidTenant)
		Expect(stalledMessage(u)).To(ContainSubstring("usable only from its own namespace"))
		Expect(eventReasons(u)).To(ContainElement(iamv1alpha1.ReasonInvalidTenant))
		Expect(countEmail(other, mail)).To(BeZero())
		Expect(usersWithEmail(mail)).To(BeZero(), "nor the default tenant")
		Expect(other.Stats().Total-before).To(BeNumerically("<=", 1), "at most the tenant's own periodic read")

		By("its deletion releases it at once: it never made a user")
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		expectGone(u)
	})

	It("refuses a ClusterCipherscaleTenant whose selector leaves the namespace out, until the namespace is selected", func() {
		other, url := newTenantSim()
		newSecret(ns, "cluster-key", map[string]string{"api-key": otherKey})
		label := uniq("team")
		prod := newClusterTenant(url, ns, "cluster-key", &metav1.LabelSelector{MatchLabels: map[string]string{"team": label}})
		expectTenantReady(prod)

		mail := email("outside")
		u := newUser(ns, "outside", mail, onTenant(iamv1alpha1.KindClusterCipherscaleTenant, prod.Name))
		expectStalled(u, iamv1alpha1.ReasonInvalidTenant)
		Expect(stalledMessage(u)).To(SatisfyAll(ContainSubstring(prod.Name), ContainSubstring("does not select this namespace")))
		Expect(countEmail(other, mail)).To(BeZero())

		By("the namespace labeled: the object uses the tenant at its next pass")
		nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		update(nsObj, func() { nsObj.Labels = map[string]string{"team": label} })
		expectReady(u)
		Expect(countEmail(other, mail)).To(Equal(1))
		Expect(meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionStalled)).To(BeNil())

		Expect(k8s.Delete(ctx, u)).To(Succeed())
		expectGone(u)
		Expect(countEmail(other, mail)).To(BeZero())
	})
})

// A namespace deleted with its CipherscaleTenant, the tenant's Secret and its users: envtest has
// no namespace controller, so the objects are deleted here, in the orders a namespace
// controller could take. Every user is finalized by its policy and nothing stays.
var _ = Describe("A namespace holding a tenant, its Secret and its users, deleted", func() {
	type step string
	const (
		secretStep step = "Secret"
		tenantStep step = "tenant"
		usersStep  step = "users"
	)
	for _, order := range [][]step{
		{secretStep, tenantStep, usersStep},
		{tenantStep, secretStep, usersStep},
		{tenantStep, usersStep, secretStep},
		{usersStep, tenantStep, secretStep},
	} {
		It("finalizes every user by its policy when the order is "+string(order[0])+", "+string(order[1])+", "+string(order[2]), func() {
			ns := newNamespace()
			other, url := newTenantSim()
			secret := newSecret(ns, "key", map[string]string{"api-key": otherKey})
			qa := newNamespacedTenant(ns, "qa", url, "key")
			expectTenantReady(qa)

			policies := []iamv1alpha1.DeletionPolicy{
				iamv1alpha1.DeletionPolicyDelete, iamv1alpha1.DeletionPolicyDelete,
				iamv1alpha1.DeletionPolicyDeactivate, iamv1alpha1.DeletionPolicyOrphan,
			}
			users := make([]*iamv1alpha1.CipherscaleUser, len(policies))
			for i, p := range policies {
				users[i] = newUser(ns, uniq("u"), email("ns-gone"), onTenant(iamv1alpha1.KindCipherscaleTenant, "qa"),
					func(u *iamv1alpha1.CipherscaleUser) { u.Spec.DeletionPolicy = p })
			}
			for _, u := range users {
				expectReady(u)
				Expect(countEmail(other, u.Spec.Email)).To(Equal(1))
			}

			for _, s := range order {
				switch s {
				case secretStep:
					Expect(k8s.Delete(ctx, secret)).To(Succeed())
				case tenantStep:
					Expect(k8s.Delete(ctx, qa)).To(Succeed())
				case usersStep:
					for _, u := range users {
						Expect(k8s.Delete(ctx, u)).To(Succeed())
					}
				}
			}
			for _, u := range users {
				expectGone(u)
			}
			expectGone(qa)
			expectGone(secret)

			for i, u := range users {
				live, found := other.UserByEmail(u.Spec.Email)
				switch policies[i] {
				case iamv1alpha1.DeletionPolicyDelete:
					Expect(found).To(BeFalse(), "%s: deleted from the tenant", u.Name)
				case iamv1alpha1.DeletionPolicyDeactivate:
					Expect(found).To(BeTrue(), "%s: kept, inactive", u.Name)
					Expect(live.Status.Normalized()).To(Equal(cipherscale.StatusInactive))
				case iamv1alpha1.DeletionPolicyOrphan:
					Expect(found).To(BeTrue(), "%s: left alone", u.Name)
					Expect(live.Status.Normalized()).NotTo(Equal(cipherscale.StatusInactive))
				}
			}
		})
	}
})

var _ = Describe("CipherscaleGroupMemberships of a second tenant", func() {
	It("add the tenant's own users to the tenant's group, and count a userRef only to a user of the same tenant", func() {
		ns := newNamespace()
		other, url := newTenantSim()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		qa := newNamespacedTenant(ns, "qa", url, "key")
		expectTenantReady(qa)
		g, err := other.AddGroup(simulator.GroupSeed{Name: uniq("qa-team"), Roles: []string{}})
		Expect(err).NotTo(HaveOccurred())

		onQA := newUser(ns, "qa-user", email("qa-member"), onTenant(iamv1alpha1.KindCipherscaleTenant, "qa"))
		onDefault := newUser(ns, "default-user", email("default-member"))
		expectReady(onQA)
		expectReady(onDefault)
		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qa-team"},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: g.ID,
				TenantRef: &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"},
				Members:   []iamv1alpha1.Member{ref("qa-user"), ref("default-user")}},
		}
		Expect(k8s.Create(ctx, m)).To(Succeed())

		Eventually(func() []string {
			u, _ := other.UserByEmail(onQA.Spec.Email)
			return groupIDs(u)
		}, 20*time.Second, 100*time.Millisecond).Should(ContainElement(normalize(g.ID)))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(m), m)).To(Succeed())
			states := map[string]iamv1alpha1.MemberState{}
			for _, st := range m.Status.Members {
				states[st.UserRef] = st.State
			}
			g.Expect(states).To(HaveKeyWithValue("qa-user", iamv1alpha1.MemberStateMember))
			g.Expect(states).To(HaveKeyWithValue("default-user", iamv1alpha1.MemberStateWaitingForUser))
		}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(countEmail(other, onDefault.Spec.Email)).To(BeZero(), "the default tenant's user is not made in qa")
		Expect(groupIDs(tenantUser(onDefault.Spec.Email))).NotTo(ContainElement(normalize(g.ID)))

		By("deleting the objects while the second tenant still answers")
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(k8s.Delete(ctx, onQA)).To(Succeed())
		expectGone(onQA)
		Expect(countEmail(other, onQA.Spec.Email)).To(BeZero())
	})
})
