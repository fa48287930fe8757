package controller_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

var _ = Describe("CipherscaleUser", func() {
	var ns, roleA, roleB, groupA, groupB string
	BeforeEach(func() {
		ns = newNamespace()
		roleA, roleB = seedRole("role-a"), seedRole("role-b")
		groupA, groupB = seedGroup("group-a", seedRole("inherited")), seedGroup("group-b")
	})

	It("creates the user with groups, then patches roles and writes the profile", func() {
		mail := email("jane")
		u := newUser(ns, "jane", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.FirstName, u.Spec.LastName = ptr("Jane"), ptr("Smith")
			u.Spec.Image = ptr("https://example.com/jane.jpg")
			u.Spec.Roles = ids(roleA, roleB)
			u.Spec.Groups = ids(groupA)
		})
		expectReady(u)
		live := tenantUser(mail)
		Expect(live.ID).To(Equal(u.Status.ID))
		Expect(live.Status).To(Equal(cipherscale.StatusPending))
		Expect(u.Status.State).To(Equal(iamv1alpha1.UserStatePending))
		Expect(live.FirstName + " " + live.LastName).To(Equal("Jane Smith"))
		Expect(live.Image).To(Equal("https://example.com/jane.jpg"))
		Expect(roleIDs(live)).To(Equal(sorted([]string{roleA, roleB})), "direct roles only; the group's role is inherited")
		Expect(groupIDs(live)).To(Equal([]string{groupA}))
		Expect(sim.InvitationsSent(mail)).To(Equal(1))
		Expect(u.Status.LastSyncTime).NotTo(BeNil())
		Expect(u.Status.Invitation).NotTo(BeNil())
		Expect(u.Finalizers).To(ContainElement(iamv1alpha1.Finalizer))
		Eventually(eventsOf(u)).Should(ContainElement(iamv1alpha1.EventCreated), "one event tells the creation and its first writes")

		By("status naming the roles and groups as the tenant reports them")
		names := map[string]string{}
		for _, r := range sim.Roles() {
			names[normalize(r.ID)] = r.Name
		}
		for _, g := range sim.Groups() {
			names[normalize(g.ID)] = g.Name
		}
		refs := func(list ...string) []iamv1alpha1.TenantRef {
			out := []iamv1alpha1.TenantRef{}
			for _, id := range sorted(list) {
				Expect(names[id]).NotTo(BeEmpty())
				out = append(out, iamv1alpha1.TenantRef{ID: id, Name: names[id]})
			}
			return out
		}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
			norm := func(in []iamv1alpha1.TenantRef) []iamv1alpha1.TenantRef {
				out := []iamv1alpha1.TenantRef{}
				for _, r := range in {
					out = append(out, iamv1alpha1.TenantRef{ID: normalize(r.ID), Name: r.Name})
				}
				return out
			}
			g.Expect(norm(u.Status.Roles)).To(Equal(refs(roleA, roleB)), "direct roles only, by name")
			g.Expect(norm(u.Status.Groups)).To(Equal(refs(groupA)))
		}, 10*resync, 100*time.Millisecond).Should(Succeed())

		By("the invitee accepting")
		_, err := sim.Accept(live.ID)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() iamv1alpha1.UserState {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(u), u)
			return u.Status.State
		}, 10*resync).Should(Equal(iamv1alpha1.UserStateActive))
		Expect(u.Status.Conditions).To(ContainElement(HaveField("Type", iamv1alpha1.ConditionReady)))
	})

	It("corrects drift of each field made in the tenant", func() {
		mail := email("drift")
		u := newUser(ns, "drift", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.FirstName = ptr("Dee")
			u.Spec.Roles = ids(roleA)
			u.Spec.Groups = ids(groupA)
		})
		expectReady(u)
		id := u.Status.ID
		_, err := sim.Accept(id)
		Expect(err).NotTo(HaveOccurred())

		By("a role added, a group removed, the name changed and the user deactivated by hand")
		Expect(byHand.PatchRoles(ctx, id, cipherscale.RolesPatch{AddedRoles: []string{roleB}})).To(Succeed())
		Expect(byHand.RemoveFromGroup(ctx, id, groupA)).To(Succeed())
		_, err = byHand.UpdateProfile(ctx, id, cipherscale.ProfileUpdate{FirstName: ptr("Mallory")})
		Expect(err).NotTo(HaveOccurred())
		_, err = byHand.DeactivateUser(ctx, id)
		Expect(err).NotTo(HaveOccurred())

		Eventually(func(g Gomega) {
			live := tenantUser(mail)
			g.Expect(roleIDs(live)).To(Equal([]string{normalize(roleA)}))
			g.Expect(groupIDs(live)).To(Equal([]string{normalize(groupA)}))
			g.Expect(live.FirstName).To(Equal("Dee"))
			g.Expect(live.Status).To(Equal(cipherscale.StatusActive))
		}, 10*resync, 100*time.Millisecond).Should(Succeed())
		Eventually(eventsOf(u)).Should(ContainElements(iamv1alpha1.EventDriftCorrected, iamv1alpha1.EventReactivated))
		expectReady(u)
	})

	It("follows spec changes, including deactivation and reactivation", func() {
		mail := email("change")
		u := newUser(ns, "change", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.Roles = ids(roleA)
			u.Spec.Groups = ids(groupA)
		})
		expectReady(u)

		update(u, func() {
			u.Spec.Roles = ids(roleB)
			u.Spec.Groups = ids(groupB)
			u.Spec.LastName = ptr("Changed")
			u.Spec.Active = ptr(false)
		})
		expectReady(u)
		live := tenantUser(mail)
		Expect(roleIDs(live)).To(Equal([]string{normalize(roleB)}))
		Expect(groupIDs(live)).To(Equal([]string{normalize(groupB)}))
		Expect(live.LastName).To(Equal("Changed"))
		Expect(live.Status).To(Equal(cipherscale.StatusInactive))
		Expect(u.Status.State).To(Equal(iamv1alpha1.UserStateInactive))

		update(u, func() {
			u.Spec.Active = ptr(true)
			u.Spec.Roles = ids()
		})
		expectReady(u)
		live = tenantUser(mail)
		Expect(live.Status).To(Equal(cipherscale.StatusPending), "a user who never accepted goes back to pending")
		Expect(live.Roles).To(BeEmpty(), "roles: [] means no direct roles")
		Eventually(eventsOf(u)).Should(ContainElements(iamv1alpha1.EventDeactivated, iamv1alpha1.EventReactivated,
			iamv1alpha1.EventGroupsUpdated, iamv1alpha1.EventRolesUpdated, iamv1alpha1.EventProfileUpdated))
	})

	It("leaves roles and groups alone when they are omitted", func() {
		mail := email("omitted")
		existing, err := sim.AddUser(simulator.UserSeed{Email: mail, Status: cipherscale.StatusActive, Roles: []string{roleA}, Groups: []string{groupA}})
		Expect(err).NotTo(HaveOccurred())
		u := newUser(ns, "omitted", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.FirstName = ptr("Omi") })
		expectReady(u)
		live := tenantUser(mail)
		Expect(live.ID).To(Equal(existing.ID))
		Expect(roleIDs(live)).To(Equal([]string{normalize(roleA)}))
		Expect(groupIDs(live)).To(Equal([]string{normalize(groupA)}))
		Expect(live.FirstName).To(Equal("Omi"))
	})

	It("adopts a user whose email differs only in case", func() {
		mail := email("adopt")
		existing, err := sim.AddUser(simulator.UserSeed{Email: "Mixed." + mail, Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		u := newUser(ns, "adopt", "mixed."+mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Roles = ids(roleA) })
		expectReady(u)
		Expect(u.Status.ID).To(Equal(existing.ID))
		Expect(u.Status.State).To(Equal(iamv1alpha1.UserStateActive))
		Expect(usersWithEmail("mixed." + mail)).To(Equal(1))
		Expect(roleIDs(tenantUser("mixed." + mail))).To(Equal([]string{normalize(roleA)}))
		Eventually(eventsOf(u)).Should(ContainElement(iamv1alpha1.EventAdopted))
	})

	It("refuses to adopt with adoptionPolicy Never", func() {
		mail := email("never")
		existing, err := sim.AddUser(simulator.UserSeed{Email: mail, Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		u := newUser(ns, "never", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
			u.Spec.Roles = ids(roleA)
			u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		})
		expectStalled(u, iamv1alpha1.ReasonAlreadyExists)
		Expect(u.Status.ID).To(BeEmpty())
		Expect(tenantUser(mail).Roles).To(BeEmpty(), "a refused user is not touched")

		By("deleting the object, which never owned the user")
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(u), u) }, 10*time.Second).ShouldNot(Succeed())
		Expect(tenantUser(mail).ID).To(Equal(existing.ID), "deletion of a refused object leaves the user")
	})

	DescribeTable("deletion policies",
		func(policy iamv1alpha1.DeletionPolicy, check func(mail string)) {
			mail := email("del")
			u := newUser(ns, "del", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.DeletionPolicy = policy })
			expectReady(u)
			Expect(k8s.Delete(ctx, u)).To(Succeed())
			Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(u), u) }, 10*time.Second).ShouldNot(Succeed())
			check(mail)
		},
		Entry("Delete removes the user", iamv1alpha1.DeletionPolicyDelete, func(mail string) {
			Expect(usersWithEmail(mail)).To(Equal(0))
		}),
		Entry("Deactivate keeps an inactive user", iamv1alpha1.DeletionPolicyDeactivate, func(mail string) {
			Expect(tenantUser(mail).Status).To(Equal(cipherscale.StatusInactive))
		}),
		Entry("Orphan leaves the user as it was", iamv1alpha1.DeletionPolicyOrphan, func(mail string) {
			Expect(tenantUser(mail).Status).To(Equal(cipherscale.StatusPending))
		}),
		Entry("empty uses the operator default (Delete)", iamv1alpha1.DeletionPolicy(""), func(mail string) {
			Expect(usersWithEmail(mail)).To(Equal(0))
		}),
	)

	It("completes deletion when the user is already gone from the tenant", func() {
		mail := email("gone")
		u := newUser(ns, "gone", mail)
		expectReady(u)
		Expect(byHand.DeleteUser(ctx, u.Status.ID)).To(Succeed())
		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(u), u) }, 10*time.Second).ShouldNot(Succeed())
	})

	It("never deactivates or deletes the tenant owner", func() {
		mail := email("owner")
		owner, err := sim.AddUser(simulator.UserSeed{Email: mail, Status: cipherscale.StatusActive, IsOwner: true})
		Expect(err).NotTo(HaveOccurred())
		u := newUser(ns, "owner", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Active = ptr(false) })
		expectStalled(u, iamv1alpha1.ReasonOwnerProtected)
		sim.ResetStats()
		Expect(tenantUser(mail).Status).To(Equal(cipherscale.StatusActive))

		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(u), u) }, 10*time.Second).ShouldNot(Succeed())
		Expect(tenantUser(mail).ID).To(Equal(owner.ID))
		Expect(sim.Stats().Count(cipherscale.RouteDeleteUser)).To(BeZero())
		Expect(sim.Stats().Count(cipherscale.RouteDeactivateUser)).To(BeZero())
		Expect(eventReasonsByUID(ns, u.UID)).To(ContainElement(iamv1alpha1.ReasonOwnerProtected))
	})

	It("resends the invitation once per annotation value", func() {
		mail := email("resend")
		u := newUser(ns, "resend", mail)
		expectReady(u)
		sim.ResetStats()
		setAnnotation(u, iamv1alpha1.AnnotationResendInvitation, "1")
		Eventually(func() int { return sim.InvitationsSent(mail) }, 10*time.Second).Should(Equal(2))
		Consistently(func() int { return sim.InvitationsSent(mail) }, 3*resync).Should(Equal(2))
		Expect(sim.Stats().Count(cipherscale.RouteResendInvitation)).To(Equal(1))

		setAnnotation(u, iamv1alpha1.AnnotationResendInvitation, "2")
		Eventually(func() int { return sim.InvitationsSent(mail) }, 10*time.Second).Should(Equal(3))
		Expect(sim.Stats().Count(cipherscale.RouteResendInvitation)).To(Equal(2))
		Eventually(eventsOf(u)).Should(ContainElement(iamv1alpha1.EventInvitationResent))
		Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(u), u)
			return u.Status.Invitation.LastResendRequest
		}).Should(Equal("2"))
	})

	It("resends automatically while pending, up to maxResends", func() {
		mail := email("auto")
		u := newUser(ns, "auto", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.Invitation = &iamv1alpha1.InvitationSpec{ResendAfter: metav1.Duration{Duration: time.Minute}, MaxResends: ptr(int32(2))}
		})
		expectReady(u)
		// A minute is the smallest resendAfter the schema allows: move the last send back instead
		// of waiting.
		for want := 2; want <= 3; want++ {
			moveLastSendBack(u)
			Eventually(func() int { return sim.InvitationsSent(mail) }, 10*resync).Should(Equal(want))
			Eventually(func() int32 {
				_ = k8s.Get(ctx, client.ObjectKeyFromObject(u), u)
				return u.Status.Invitation.Resends
			}).Should(BeEquivalentTo(want - 1))
		}
		moveLastSendBack(u)
		Consistently(func() int { return sim.InvitationsSent(mail) }, 3*resync).Should(Equal(3), "maxResends 2 bounds the automatic resends")
	})

	It("makes no write while paused, reports the drift, and applies it when unpaused", func() {
		mail := email("paused")
		u := newUser(ns, "paused", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Roles = ids(roleA) })
		expectReady(u)
		setAnnotation(u, iamv1alpha1.AnnotationPaused, "true")
		Eventually(conditionOf(u, iamv1alpha1.ConditionReady)).Should(HaveField("Reason", iamv1alpha1.ReasonPaused))
		sim.ResetStats()
		update(u, func() { u.Spec.Roles = ids(roleB) })
		Eventually(conditionOf(u, iamv1alpha1.ConditionReady)).Should(SatisfyAll(
			haveCondition(u, metav1.ConditionFalse, iamv1alpha1.ReasonPaused),
			HaveField("Message", ContainSubstring("roles +1 -1"))))
		Consistently(func() int { return writes(sim.Stats()) }, 2*resync).Should(BeZero())
		Expect(roleIDs(tenantUser(mail))).To(Equal([]string{normalize(roleA)}))

		setAnnotation(u, iamv1alpha1.AnnotationPaused, "")
		expectReady(u)
		Expect(roleIDs(tenantUser(mail))).To(Equal([]string{normalize(roleB)}))
	})

	It("lets the older of two objects with one email own it", func() {
		other := newNamespace()
		mail := email("twice")
		first := newUser(ns, "first", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.Roles = ids(roleA)
			u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyOrphan
		})
		expectReady(first)
		second := newUser(other, "second", "  "+mail[:1]+mail[1:], func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.Email = mail
			u.Spec.Roles = ids(roleB)
		})
		expectStalled(second, iamv1alpha1.ReasonEmailConflict)
		msg := conditionOf(second, iamv1alpha1.ConditionStalled)().Message
		Expect(msg).To(ContainSubstring("Another CipherscaleUser"))
		Expect(msg).NotTo(ContainSubstring(ns), "the owner may be in a namespace the reader cannot see")
		Expect(msg).NotTo(ContainSubstring("first"))
		Consistently(func() []string { return roleIDs(tenantUser(mail)) }, 2*resync).Should(Equal([]string{normalize(roleA)}))

		By("the older one leaving, the newer takes over")
		Expect(k8s.Delete(ctx, first)).To(Succeed())
		expectReady(second)
		Expect(roleIDs(tenantUser(mail))).To(Equal([]string{normalize(roleB)}))
		Expect(usersWithEmail(mail)).To(Equal(1))
	})

	It("stalls only the object with an unknown role", func() {
		bad := newUser(ns, "bad", email("bad"), func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.Roles = ids("00000000-0000-4000-8000-000000000000")
		})
		good := newUser(ns, "good", email("good"), func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Roles = ids(roleA) })
		expectStalled(bad, iamv1alpha1.ReasonInvalidReference)
		expectReady(good)
		Eventually(eventsOf(bad)).Should(ContainElement(iamv1alpha1.ReasonInvalidReference))

		By("fixing the spec")
		update(bad, func() { bad.Spec.Roles = ids(roleB) })
		expectReady(bad)
		Expect(conditionOf(bad, iamv1alpha1.ConditionStalled)()).To(BeNil())
	})

	It("stalls with an unknown group on create, and no user is created", func() {
		mail := email("badgroup")
		u := newUser(ns, "badgroup", mail, func(u *iamv1alpha1.CipherscaleUser) {
			u.Spec.Groups = ids("00000000-0000-4000-8000-00000000000a")
		})
		expectStalled(u, iamv1alpha1.ReasonInvalidReference)
		Expect(usersWithEmail(mail)).To(BeZero())
	})

	It("reports a refused API key as Unauthorized on the default tenant, its objects InvalidTenant, and recovers", func() {
		mail := email("unauth")
		def := &iamv1alpha1.ClusterCipherscaleTenant{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		defReady := func() *metav1.Condition {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(def), def); err != nil {
				return nil
			}
			return meta.FindStatusCondition(def.Status.Conditions, iamv1alpha1.ConditionReady)
		}
		sim.SetFaults([]simulator.FaultRule{{Status: 401}})
		u := newUser(ns, "unauth", mail)
		Eventually(defReady, 20*time.Second, 100*time.Millisecond).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", iamv1alpha1.ReasonUnauthorized)))
		expectStalled(u, iamv1alpha1.ReasonInvalidTenant)
		Expect(conditionOf(u, iamv1alpha1.ConditionStalled)().Message).To(ContainSubstring(`ClusterCipherscaleTenant "default" cannot be used until it is fixed (Unauthorized)`))
		Expect(usersWithEmail(mail)).To(BeZero())
		sim.ClearFaults()
		Eventually(defReady, 20*time.Second, 100*time.Millisecond).Should(HaveField("Status", metav1.ConditionTrue))
		expectReady(u)
	})

	It("waits for Retry-After on a 429", func() {
		mail := email("throttled")
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, Status: 429, RetryAfterSeconds: 2, Count: 1}})
		start := time.Now()
		u := newUser(ns, "throttled", mail)
		expectReady(u)
		Expect(time.Since(start)).To(BeNumerically(">=", 2*time.Second))
		Expect(sim.Stats().CountStatus(cipherscale.RouteCreateUsers, 429)).To(BeNumerically(">=", 1))
		Expect(usersWithEmail(mail)).To(Equal(1))
	})

	It("creates one user when the create's response is lost", func() {
		mail := email("dropped")
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, Drop: true, Count: 1}})
		u := newUser(ns, "dropped", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.Roles = ids(roleA) })
		expectReady(u)
		Expect(usersWithEmail(mail)).To(Equal(1))
		Expect(sim.InvitationsSent(mail)).To(Equal(1))
		Expect(u.Status.ID).To(Equal(tenantUser(mail).ID))
	})

	It("holds no worker while creates wait for the API: other objects go on, and the waiting creates share requests", func() {
		mail := email("meanwhile")
		other := newUser(ns, "meanwhile", mail, func(u *iamv1alpha1.CipherscaleUser) { u.Spec.FirstName = ptr("Before") })
		expectReady(other)

		// More new users than the suite's 8 workers, each create answered after 12s.
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, LatencyMs: 12000}})
		posts := sim.Stats().Count(cipherscale.RouteCreateUsers)
		var created []*iamv1alpha1.CipherscaleUser
		for i := range 12 {
			created = append(created, newUser(ns, fmt.Sprintf("slow-%d", i), email("slow"), func(u *iamv1alpha1.CipherscaleUser) {
				u.Spec.Roles = ids(roleA)
			}))
		}
		for _, u := range created {
			Eventually(conditionOf(u, iamv1alpha1.ConditionReady), 20*time.Second, 100*time.Millisecond).
				Should(haveCondition(u, metav1.ConditionFalse, iamv1alpha1.ReasonCreating))
		}

		By("a change to another object is carried out while the creates wait")
		update(other, func() { other.Spec.FirstName = ptr("After") })
		Eventually(func() string { return tenantUser(mail).FirstName }, 10*time.Second, 50*time.Millisecond).Should(Equal("After"))
		for _, u := range created {
			Expect(usersWithEmail(u.Spec.Email)).To(Equal(0), "no create was answered yet: the change did not wait for a worker")
		}

		By("each waiting object gets its own user, created once")
		for _, u := range created {
			Eventually(conditionOf(u, iamv1alpha1.ConditionReady), 60*time.Second, 100*time.Millisecond).
				Should(haveCondition(u, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate))
			Expect(usersWithEmail(u.Spec.Email)).To(Equal(1))
			Expect(sim.InvitationsSent(u.Spec.Email)).To(Equal(1))
			Expect(u.Status.ID).To(Equal(tenantUser(u.Spec.Email).ID))
			Expect(u.Annotations).NotTo(HaveKey(iamv1alpha1.AnnotationCreatePending))
			Expect(roleIDs(tenantUser(u.Spec.Email))).To(Equal([]string{normalize(roleA)}))
			Eventually(eventsOf(u)).Should(ContainElement(iamv1alpha1.EventCreated))
		}
		// One request in flight at a time: those queued behind the first share the next.
		Expect(sim.Stats().Count(cipherscale.RouteCreateUsers) - posts).To(BeNumerically("<=", 3))
	})

	It("makes only read calls on a resync when nothing differs", func() {
		var users []*iamv1alpha1.CipherscaleUser
		for i := range 5 {
			users = append(users, newUser(ns, uniq("quiet"), email("quiet"), func(u *iamv1alpha1.CipherscaleUser) {
				u.Spec.Roles = ids(roleA)
				u.Spec.Groups = ids(groupA)
				u.Spec.FirstName = ptr("Q")
				_ = i
			}))
		}
		for _, u := range users {
			expectReady(u)
		}
		sim.ResetStats()
		time.Sleep(3 * resync) // three resync intervals: the measurement itself
		st := sim.Stats()
		Expect(writes(st)).To(BeZero())
		Expect(st.Count(cipherscale.RouteListUsers)).To(BeNumerically(">=", 1))
		Expect(st.Count(cipherscale.RouteListUsers)).To(BeNumerically("<=", 6), "about one list read per resync, not one per object")
		Expect(st.Count(cipherscale.RouteGetUser)).To(BeZero())
		for _, u := range users {
			Expect(eventReasons(u)).NotTo(ContainElement(iamv1alpha1.EventDriftCorrected))
		}
	})
})

// writes counts the calls of the stats that change the tenant.
func writes(st simulator.Stats) int {
	n := 0
	for _, r := range st.Requests {
		if r.Route != cipherscale.RouteListUsers && r.Route != cipherscale.RouteGetUser && r.Route != cipherscale.RouteUserRoles {
			n += r.Count
		}
	}
	return n
}

// moveLastSendBack makes the last invitation look two minutes old.
func moveLastSendBack(u *iamv1alpha1.CipherscaleUser) {
	GinkgoHelper()
	Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			return err
		}
		back := metav1.NewTime(time.Now().Add(-2 * time.Minute))
		u.Status.Invitation.LastSentTime = &back
		return k8s.Status().Update(ctx, u)
	}).Should(Succeed())
}

func setAnnotation(obj client.Object, key, value string) {
	GinkgoHelper()
	update(obj, func() {
		a := obj.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		if value == "" {
			delete(a, key)
		} else {
			a[key] = value
		}
		obj.SetAnnotations(a)
	})
}
