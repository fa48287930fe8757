package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

var _ = Describe("CipherscaleGroupMembership", func() {
	var ns, group string
	BeforeEach(func() {
		ns = newNamespace()
		group = seedGroup("team")
	})

	handMade := func(prefix string) (string, cipherscale.User) {
		mail := email(prefix)
		u, err := sim.AddUser(simulator.UserSeed{Email: mail, Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		return mail, u
	}
	inGroup := func(mail string) bool {
		for _, g := range tenantUser(mail).GroupIDs() {
			if normalize(g) == normalize(group) {
				return true
			}
		}
		return false
	}
	memberStates := func(m *iamv1alpha1.CipherscaleGroupMembership) func() []iamv1alpha1.MemberState {
		return func() []iamv1alpha1.MemberState {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(m), m)
			var out []iamv1alpha1.MemberState
			for _, s := range m.Status.Members {
				out = append(out, s.State)
			}
			return out
		}
	}

	It("adds a userRef and an email member (Additive), and leaves a member added by hand", func() {
		jane := email("jane")
		u := newUser(ns, "jane", jane)
		contractor, _ := handMade("contractor")
		extra, _ := handMade("extra")
		Expect(byHand.AddToGroups(ctx, tenantUser(extra).ID, []string{group})).To(Succeed())

		m := newMembership(ns, "team", group, "", ref("jane"), byEmail(contractor))
		expectReady(u)
		expectReady(m)
		Expect(m.Spec.Policy).To(Equal(iamv1alpha1.MembershipPolicyAdditive), "the default")
		Expect(inGroup(jane)).To(BeTrue())
		Expect(inGroup(contractor)).To(BeTrue())
		Expect(inGroup(extra)).To(BeTrue(), "Additive never removes")
		Expect(m.Status.MemberCount).To(BeEquivalentTo(2))
		Expect(m.Status.Members).To(ConsistOf(
			SatisfyAll(HaveField("UserRef", "jane"), HaveField("UserID", tenantUser(jane).ID), HaveField("State", iamv1alpha1.MemberStateMember)),
			SatisfyAll(HaveField("Email", normalize(contractor)), HaveField("State", iamv1alpha1.MemberStateMember)),
		))
		Eventually(eventsOf(m)).Should(ContainElement(iamv1alpha1.EventMembersUpdated))
	})

	It("removes members nobody declares (Authoritative), but not those another object declares", func() {
		kept, _ := handMade("kept")
		extra, _ := handMade("extra")
		declaredElsewhere := email("elsewhere")
		other := newUser(ns, "elsewhere", declaredElsewhere, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Groups = ids(group) })
		expectReady(other)
		Expect(byHand.AddToGroups(ctx, tenantUser(extra).ID, []string{group})).To(Succeed())

		m := newMembership(ns, "team", group, iamv1alpha1.MembershipPolicyAuthoritative, byEmail(kept))
		expectReady(m)
		Eventually(func() bool { return inGroup(extra) }, 10*resync).Should(BeFalse())
		Expect(inGroup(kept)).To(BeTrue())
		Expect(inGroup(declaredElsewhere)).To(BeTrue(), "a CipherscaleUser's spec.groups declares it")

		By("a member added by hand later is removed at the next resync")
		Expect(byHand.AddToGroups(ctx, tenantUser(extra).ID, []string{group})).To(Succeed())
		Eventually(func() bool { return inGroup(extra) }, 10*resync).Should(BeFalse())
	})

	It("waits for a CipherscaleUser that does not exist yet", func() {
		m := newMembership(ns, "team", group, "", ref("later"))
		Eventually(memberStates(m)).Should(Equal([]iamv1alpha1.MemberState{iamv1alpha1.MemberStateWaitingForUser}))
		Expect(conditionOf(m, iamv1alpha1.ConditionReady)()).To(haveCondition(m, "False", iamv1alpha1.ReasonWaitingForUser))
		Expect(conditionOf(m, iamv1alpha1.ConditionReconciling)()).To(haveCondition(m, "True", iamv1alpha1.ReasonWaitingForUser))

		mail := email("later")
		start := time.Now()
		u := newUser(ns, "later", mail)
		expectReady(u)
		expectReady(m)
		Expect(inGroup(mail)).To(BeTrue())
		Expect(time.Since(start)).To(BeNumerically("<", resync), "the user's status change wakes the membership; no polling")
	})

	It("isolates a member whose email is not in the tenant", func() {
		present, _ := handMade("present")
		missing := email("missing")
		m := newMembership(ns, "team", group, "", byEmail(missing), byEmail(present))
		expectStalled(m, iamv1alpha1.ReasonUserNotFound)
		Expect(inGroup(present)).To(BeTrue())
		Expect(memberStates(m)()).To(Equal([]iamv1alpha1.MemberState{iamv1alpha1.MemberStateUserNotFound, iamv1alpha1.MemberStateMember}))
		Expect(m.Status.MemberCount).To(BeEquivalentTo(1))
	})

	It("reports an unknown group as InvalidReference", func() {
		present, _ := handMade("present")
		m := newMembership(ns, "team", "00000000-0000-4000-8000-0000000000ff", "", byEmail(present))
		expectStalled(m, iamv1alpha1.ReasonInvalidReference)
	})

	It("reports an unknown group as InvalidReference when its members have CipherscaleUsers, and never stalls them", func() {
		u := newUser(ns, "known", email("known"))
		m := newMembership(ns, "team", "00000000-0000-4000-8000-0000000000fe", "", ref("known"))
		expectStalled(m, iamv1alpha1.ReasonInvalidReference)
		expectReady(u)
		Expect(eventsOf(u)()).NotTo(ContainElement(iamv1alpha1.EventDriftCorrected))
	})

	It("on deletion with Delete removes only the pairs nothing else declares; Orphan removes none", func() {
		solo, _ := handMade("solo")
		shared := email("shared")
		u := newUser(ns, "shared", shared, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Groups = ids(group) })
		expectReady(u)
		orphan, _ := handMade("orphan")
		orphanGroup := seedGroup("orphan")

		del := newMembership(ns, "del", group, "", byEmail(solo), ref("shared"))
		keep := newMembership(ns, "keep", orphanGroup, "", byEmail(orphan))
		update(keep, func() { keep.Spec.DeletionPolicy = iamv1alpha1.MembershipDeletionPolicyOrphan })
		expectReady(del)
		expectReady(keep)
		Expect(del.Spec.DeletionPolicy).To(Equal(iamv1alpha1.MembershipDeletionPolicyDelete), "the default")

		Expect(k8s.Delete(ctx, del)).To(Succeed())
		Expect(k8s.Delete(ctx, keep)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(del), del) }, 10*time.Second).ShouldNot(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(keep), keep) }, 10*time.Second).ShouldNot(Succeed())
		Expect(inGroup(solo)).To(BeFalse(), "declared only by the deleted membership")
		Expect(inGroup(shared)).To(BeTrue(), "also declared by the user's spec.groups")
		Expect(tenantUser(orphan).GroupIDs()).To(ContainElement(orphanGroup), "Orphan leaves its pairs")
	})

	It("reports GroupConflict on the newer of two Authoritative memberships", func() {
		a, _ := handMade("a")
		b, _ := handMade("b")
		first := newMembership(ns, "first", group, iamv1alpha1.MembershipPolicyAuthoritative, byEmail(a))
		expectReady(first)
		second := newMembership(ns, "second", group, iamv1alpha1.MembershipPolicyAuthoritative, byEmail(b))
		expectStalled(second, iamv1alpha1.ReasonGroupConflict)
		Consistently(func() bool { return inGroup(b) }, 2*resync).Should(BeFalse(), "the newer one does nothing")
		Expect(inGroup(a)).To(BeTrue())

		By("the older one leaving")
		Expect(k8s.Delete(ctx, first)).To(Succeed())
		expectReady(second)
		Expect(inGroup(b)).To(BeTrue())
		Eventually(func() bool { return inGroup(a) }, 10*resync).Should(BeFalse(), "now authoritative, and a is declared by nobody")
	})

	It("converges a user's spec.groups with two memberships, then makes no group call", func() {
		other := seedGroup("other")
		third := seedGroup("third")
		mail := email("multi")
		u := newUser(ns, "multi", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Groups = ids(group) })
		m1 := newMembership(ns, "m1", other, iamv1alpha1.MembershipPolicyAuthoritative, ref("multi"))
		m2 := newMembership(ns, "m2", third, "", byEmail(mail))
		for _, o := range []client.Object{u, m1, m2} {
			expectReady(o)
		}
		Expect(groupIDs(tenantUser(mail))).To(Equal(sorted([]string{group, other, third})),
			"spec.groups is authoritative for the user, but the memberships declare their groups")

		sim.ResetStats()
		time.Sleep(4 * resync) // four resync intervals: the measurement itself
		st := sim.Stats()
		Expect(st.Count(cipherscale.RouteAddToGroups)).To(BeZero())
		Expect(st.Count(cipherscale.RouteRemoveFromGroup)).To(BeZero())
		Expect(writes(st)).To(BeZero())
		Expect(groupIDs(tenantUser(mail))).To(Equal(sorted([]string{group, other, third})))
	})
})
