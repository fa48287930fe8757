package controller_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// Attack 5 of issue 21: deleting and re-creating the object reset the invitation cap (16
// invitations to one address in two minutes). The cap counts per address, whichever object
// asked, and the tenant keeps it in its status.
var _ = Describe("The invitation cap of a tenant object", func() {
	It("counts every invitation to an address, a create's and each resend's, through deletes and re-creates of its object", func() {
		const maxPerDay = 3
		ns := newNamespace()
		tsim, url := newTenantSim()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		tn := &iamv1alpha1.CipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "people"},
			Spec: iamv1alpha1.CipherscaleTenantSpec{
				APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: "key"},
				TenantSettings: iamv1alpha1.TenantSettings{URL: url,
					RemovalBudget: &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(0))},
					Invitations:   &iamv1alpha1.InvitationsSpec{MaxPerDay: ptr(int32(maxPerDay))}},
			},
		}
		allowTenant(ns, "key", "CipherscaleTenant/"+tn.Name)
		Expect(k8s.Create(ctx, tn)).To(Succeed())
		expectTenantReady(tn)
		mail := email("again")
		sent := func() int { return tsim.InvitationsSent(mail) }
		object := func(round string) *iamv1alpha1.CipherscaleUser {
			return newUser(ns, "again-"+round, mail, func(u *iamv1alpha1.CipherscaleUser) {
				u.Spec.TenantRef = &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: tn.Name}
				u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
			})
		}
		gone := func(u *iamv1alpha1.CipherscaleUser) func() bool {
			return func() bool { return k8s.Get(ctx, client.ObjectKeyFromObject(u), u) != nil }
		}

		By("an object creates the user (one invitation) and asks for a resend (two)")
		u := object("1")
		expectReady(u)
		Expect(sent()).To(Equal(1))
		setAnnotation(u, iamv1alpha1.AnnotationResendInvitation, "1")
		Eventually(sent, 10*time.Second).Should(Equal(2))

		By("deleted (the user with it) and re-created: the create sends the third")
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(gone(u), 10*time.Second).Should(BeTrue())
		Expect(usersWithEmailIn(tsim, mail)).To(BeZero())
		u = object("2")
		expectReady(u)
		Expect(sent()).To(Equal(maxPerDay))

		By("its resend is deferred")
		setAnnotation(u, iamv1alpha1.AnnotationResendInvitation, "2")
		Eventually(eventsOf(u), 10*time.Second).Should(ContainElement(iamv1alpha1.EventInvitationDeferred))

		By("deleted and re-created again: no create, and so no invitation, until a send leaves the 24 hours")
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(gone(u), 10*time.Second).Should(BeTrue())
		u = object("3")
		Eventually(conditionOf(u, iamv1alpha1.ConditionReconciling), 10*time.Second).
			Should(haveCondition(u, metav1.ConditionTrue, iamv1alpha1.EventInvitationDeferred))
		Expect(eventReasons(u)).To(ContainElement(iamv1alpha1.EventInvitationDeferred))
		Consistently(sent, 2*time.Second, 100*time.Millisecond).Should(Equal(maxPerDay))
		Expect(usersWithEmailIn(tsim, mail)).To(BeZero())

		By("the tenant's status keeps the count, by a hash of the address")
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tn), tn)).To(Succeed())
			g.Expect(tn.Status.InvitationsSent).To(HaveLen(1))
			g.Expect(tn.Status.InvitationsSent[0].SentTimes).To(HaveLen(maxPerDay))
			g.Expect(strings.ToLower(tn.Status.InvitationsSent[0].Email)).NotTo(ContainSubstring(strings.ToLower(strings.Split(mail, "@")[0])))
		}, 5*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(gone(u), 10*time.Second).Should(BeTrue())
	})
})

// usersWithEmailIn counts the users of a simulator with this email.
func usersWithEmailIn(s *simulator.Server, mail string) int {
	n := 0
	for _, u := range s.Users() {
		if cipherscale.NormalizeEmail(u.Email) == cipherscale.NormalizeEmail(mail) {
			n++
		}
	}
	return n
}
