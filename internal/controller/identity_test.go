package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

var _ = Describe("Identity", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	gone := func(obj client.Object) func() error {
		return func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj) }
	}

	It("records the id in metadata, and a restore without status finds the same user", func() {
		mail := email("restore")
		u := newUser(ns, "restore", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
			u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyOrphan
		})
		expectReady(u)
		id := u.Status.ID
		Expect(id).To(Equal(tenantUser(mail).ID))
		Expect(u.Annotations).To(HaveKeyWithValue(iamv1alpha1.AnnotationUserID, id))
		Expect(u.Annotations).NotTo(HaveKey(iamv1alpha1.AnnotationCreatePending))

		By("deleting it with Orphan and restoring its metadata and spec, as a backup tool does")
		annotations, spec := u.Annotations, u.Spec
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(gone(u), 10*time.Second).ShouldNot(Succeed())
		restored := newUser(ns, "restore", mail, func(r *iamv1alpha1.CipherscaleUser) {
			r.Annotations, r.Spec = annotations, spec
		})
		expectReady(restored)
		Expect(restored.Status.ID).To(Equal(id))
		Expect(usersWithEmail(mail)).To(Equal(1))
		Expect(eventReasons(restored)).NotTo(ContainElement(iamv1alpha1.ReasonAlreadyExists))
	})

	It("takes the user a pending create made as its own, even with adoptionPolicy Never", func() {
		mail := email("pending")
		// The create was applied, but its answer was lost with the process that sent it.
		made, err := sim.AddUser(simulator.UserSeed{Email: mail})
		Expect(err).NotTo(HaveOccurred())
		u := newUser(ns, "pending", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Annotations = map[string]string{iamv1alpha1.AnnotationCreatePending: time.Now().UTC().Format(time.RFC3339)}
			u.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
		})
		expectReady(u)
		Expect(u.Status.ID).To(Equal(made.ID))
		Expect(u.Annotations).To(HaveKeyWithValue(iamv1alpha1.AnnotationUserID, made.ID))
		Expect(u.Annotations).NotTo(HaveKey(iamv1alpha1.AnnotationCreatePending))
		Expect(usersWithEmail(mail)).To(Equal(1))
	})

	It("never swaps the recorded user for another with the email", func() {
		mail := email("swap")
		u := newUser(ns, "swap", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		})
		expectReady(u)
		other, err := sim.AddUser(simulator.UserSeed{Email: email("other"), Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())

		By("pointing the annotation at a user with another email")
		setAnnotation(u, iamv1alpha1.AnnotationUserID, other.ID)
		expectStalled(u, iamv1alpha1.ReasonEmailMismatch)

		By("deleting the object: the other user is left alone")
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(conditionOf(u, iamv1alpha1.ConditionStalled), 10*time.Second).
			Should(HaveField("Message", ContainSubstring("left alone")))
		Expect(tenantUser(other.Email).ID).To(Equal(other.ID))
		update(u, func() { u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyOrphan })
		Eventually(gone(u), 10*time.Second).ShouldNot(Succeed())
		Expect(tenantUser(other.Email).ID).To(Equal(other.ID))
	})

	It("reports two tenant users whose emails differ only in case, naming both", func() {
		mail := email("twin")
		first, err := sim.AddUser(simulator.UserSeed{Email: mail, Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		// The same email with a capital first letter, under another id.
		twin := cipherscale.User{ID: "7e1a7e1a-0000-4000-8000-" + first.ID[len(first.ID)-12:], Email: upperFirst(mail),
			Status: cipherscale.StatusActive, Roles: cipherscale.RoleList{}, Groups: []cipherscale.Group{}}
		operator.ListAlso(twin)
		u := newUser(ns, "twin", mail)
		Eventually(conditionOf(u, iamv1alpha1.ConditionStalled), 20*time.Second).
			Should(haveCondition(u, metav1.ConditionTrue, iamv1alpha1.ReasonAmbiguousEmail))
		msg := conditionOf(u, iamv1alpha1.ConditionStalled)().Message
		Expect(msg).To(ContainSubstring(first.ID))
		Expect(msg).To(ContainSubstring(twin.ID))
		Expect(u.Status.ID).To(BeEmpty(), "neither was picked")
		Expect(u.Annotations).NotTo(HaveKey(iamv1alpha1.AnnotationUserID))
	})

	It("makes a membership Stalled while its member's CipherscaleUser is stalled or paused before creation", func() {
		group := seedGroup("stalled")
		taken := email("taken")
		_, err := sim.AddUser(simulator.UserSeed{Email: taken, Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		refused := newUser(ns, "refused", taken, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
		})
		expectStalled(refused, iamv1alpha1.ReasonAlreadyExists)
		m := newMembership(ns, "waits", group, "", ref("refused"))
		expectStalled(m, iamv1alpha1.ReasonWaitingForUser)

		paused := newUser(ns, "paused", email("paused"), func(u *iamv1alpha1.CipherscaleUser) {
			u.Annotations = map[string]string{iamv1alpha1.AnnotationPaused: "true"}
		})
		Eventually(conditionOf(paused, iamv1alpha1.ConditionReady)).Should(HaveField("Reason", iamv1alpha1.ReasonPaused))
		m2 := newMembership(ns, "waits-paused", group, "", ref("paused"))
		expectStalled(m2, iamv1alpha1.ReasonWaitingForUser)

		By("lifting the pause: the user is created and the membership becomes Ready")
		setAnnotation(paused, iamv1alpha1.AnnotationPaused, "")
		expectReady(paused)
		expectReady(m2)
		Expect(groupIDs(tenantUser(paused.Spec.Email))).To(Equal([]string{normalize(group)}))
	})

	It("deletes the user a create in flight makes for an object deleted meanwhile", func() {
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, LatencyMs: 3000}})
		mail := email("inflight")
		u := newUser(ns, "inflight", mail)
		Eventually(conditionOf(u, iamv1alpha1.ConditionReady), 20*time.Second, 50*time.Millisecond).
			Should(haveCondition(u, metav1.ConditionFalse, iamv1alpha1.ReasonCreating))
		Expect(usersWithEmail(mail)).To(Equal(0), "deleted before the create's answer")
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(u), u) }, 30*time.Second).ShouldNot(Succeed())
		Expect(usersWithEmail(mail)).To(Equal(0), "the user the create made is deleted with its object, not left behind")
	})

	It("keeps the Created event when the first writes after the create fail", func() {
		role := seedRole("created")
		mail := email("created")
		// Every role patch fails for a while, past the client's own retries.
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RoutePatchRoles, Status: 500, Count: 12}})
		u := newUser(ns, "created", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Roles = ids(role) })
		Eventually(conditionOf(u, iamv1alpha1.ConditionReady), 20*time.Second).
			Should(HaveField("Reason", iamv1alpha1.ReasonAPIUnavailable))
		Expect(u.Annotations).To(HaveKeyWithValue(iamv1alpha1.AnnotationUserID, tenantUser(mail).ID), "the id is recorded before the writes")
		expectReady(u)
		Expect(eventsOf(u)()).To(ContainElement(iamv1alpha1.EventCreated))
		Expect(usersWithEmail(mail)).To(Equal(1))
		Expect(roleIDs(tenantUser(mail))).To(Equal([]string{normalize(role)}))
	})

	It("removes the pair of a membership deleted after its user's object", func() {
		group := seedGroup("after")
		mail := email("after")
		u := newUser(ns, "after", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyOrphan
		})
		m := newMembership(ns, "after", group, "", ref("after"))
		expectReady(u)
		expectReady(m)
		Expect(groupIDs(tenantUser(mail))).To(Equal([]string{normalize(group)}))
		Expect(m.Status.Members).To(ConsistOf(HaveField("UserID", u.Status.ID)))

		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(gone(u), 10*time.Second).ShouldNot(Succeed())
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		Eventually(gone(m), 10*time.Second).ShouldNot(Succeed())
		Expect(groupIDs(tenantUser(mail))).To(BeEmpty())
		Expect(tenantUser(mail).ID).To(Equal(u.Status.ID), "the user itself stays (Orphan)")
	})
})

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if b[0] >= 'a' && b[0] <= 'z' {
		b[0] -= 'a' - 'A'
	}
	return string(b)
}
