package controller_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// Namespaces named with these prefixes are less trusted by the suite's operator: "trust-none-"
// may neither adopt nor hold privileged objects; "trust-adopt-" may adopt, but not hold
// privileged objects. Every other namespace may do everything.
const (
	untrustedPrefix = "trust-none-"
	adoptingPrefix  = "trust-adopt-"
)

// trustLabel is the label newPrefixedNamespace gives the namespaces of those prefixes, which
// the default tenant's trust selectors (testTrust) read.
const trustLabel = "test.cipherscale.com/trust"

// testTrust is the suite's default tenant's trust: adoption for every namespace but the
// untrusted ones, privileged objects for every namespace but the untrusted and adopting ones.
func testTrust(t *iamv1alpha1.ClusterCipherscaleTenant) {
	notIn := func(values ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: trustLabel, Operator: metav1.LabelSelectorOpNotIn, Values: values}}}
	}
	t.Spec.Adoption = &iamv1alpha1.AdoptionSpec{NamespaceSelector: notIn("none")}
	t.Spec.Privileged = &iamv1alpha1.PrivilegedSpec{NamespaceSelector: notIn("none", "adopt")}
}

// trustOf is the trustLabel value of a namespace made with prefix ("" for none).
func trustOf(prefix string) string {
	switch prefix {
	case untrustedPrefix:
		return "none"
	case adoptingPrefix:
		return "adopt"
	}
	return ""
}

// attacker is a person allowed only to write CipherscaleUsers and memberships in one namespace:
// a namespace-only Role, used through impersonation.
func attacker(ns string) client.Client {
	GinkgoHelper()
	c, err := devenv.NamespaceUser(ctx, k8s, cp.Config, ns, "cipherscaleusers", "cipherscalegroupmemberships")
	Expect(err).NotTo(HaveOccurred())
	return c
}

// writeRoutes are the API calls that change the tenant.
var writeRoutes = []string{
	cipherscale.RouteCreateUsers, cipherscale.RouteUpdateProfile, cipherscale.RouteDeleteUser,
	cipherscale.RouteDeactivateUser, cipherscale.RouteReactivateUser, cipherscale.RouteResendInvitation,
	cipherscale.RoutePatchRoles, cipherscale.RouteAddToGroups, cipherscale.RouteRemoveFromGroup,
}

// writeLog records every write request the simulator answers to an existing user: the user id
// in its path. The specs check the writes that touch their own people, so that objects of
// earlier specs still settling cannot fail them. Creates are not recorded: a create of an email
// the tenant has is refused (409) and changes nobody, and the operator may try one when its
// snapshot has not seen the user yet (identity.md); the specs check instead that no user appears
// and that the existing ones are as they were.
var writeLog struct {
	sync.Mutex
	ids []string
}

func recordWrite(route string, r *http.Request) {
	if !slices.Contains(writeRoutes, route) || route == cipherscale.RouteCreateUsers {
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/tenants/users/")
	if !ok {
		return
	}
	id, _, _ := strings.Cut(rest, "/")
	writeLog.Lock()
	defer writeLog.Unlock()
	writeLog.ids = append(writeLog.ids, plan.NormalizeID(id))
}

// settledWrites returns the position in the write log from which expectNoWrite looks.
func settledWrites() int {
	sim.SetHook(recordWrite)
	writeLog.Lock()
	defer writeLog.Unlock()
	return len(writeLog.ids)
}

// writesTouching counts the writes since before to one of the users, by id.
func writesTouching(before int, users []cipherscale.User) int {
	writeLog.Lock()
	defer writeLog.Unlock()
	n := 0
	for _, id := range writeLog.ids[before:] {
		for _, u := range users {
			if u.ID != "" && id == plan.NormalizeID(u.ID) {
				n++
				break
			}
		}
	}
	return n
}

// expectNoWrite checks that no write touches the users while the operator resyncs, and that the
// users that exist are as they were.
func expectNoWrite(before int, users ...cipherscale.User) {
	GinkgoHelper()
	Consistently(func() int { return writesTouching(before, users) }, 2*resync, 200*time.Millisecond).
		Should(BeZero(), "the tenant was written")
	for _, u := range users {
		if u.ID == "" {
			continue // never created: the spec checks that no user appears
		}
		now := tenantUser(u.Email)
		Expect(now.ID).To(Equal(u.ID), "user %s is gone", u.Email)
		Expect(now.Status).To(Equal(u.Status))
		Expect(now.FirstName).To(Equal(u.FirstName))
		Expect(now.LastName).To(Equal(u.LastName))
		Expect(now.Image).To(Equal(u.Image))
		Expect(roleIDs(now)).To(Equal(roleIDs(u)))
		Expect(groupIDs(now)).To(Equal(groupIDs(u)))
	}
}

func adminRole() string {
	r, err := sim.AddRole(simulator.RoleSeed{Name: uniq("Admin"), Type: cipherscale.RoleTypeAdmin})
	Expect(err).NotTo(HaveOccurred())
	return r.ID
}

var _ = Describe("Trust boundaries: a namespace is not the tenant", func() {
	It("refuses to adopt an existing administrator, and deleting the object leaves them alone", func() {
		ns := newPrefixedNamespace(untrustedPrefix)
		mallory := attacker(ns)
		admin, err := sim.AddUser(simulator.UserSeed{Email: email("admin"), Status: cipherscale.StatusActive, FirstName: "Ada", Roles: []string{adminRole()}})
		Expect(err).NotTo(HaveOccurred())
		before := settledWrites()

		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "takeover"},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: admin.Email, Roles: ids(), FirstName: ptr("Mallory")},
		}
		Expect(mallory.Create(ctx, u)).To(Succeed())
		expectStalled(u, iamv1alpha1.ReasonAdoptionNotAllowed)
		Expect(u.Annotations).NotTo(HaveKey(iamv1alpha1.AnnotationUserID))
		Expect(u.Status.ID).To(BeEmpty())
		expectNoWrite(before, admin)

		Expect(mallory.Delete(ctx, u)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)) }, 20*time.Second).Should(BeTrue())
		expectNoWrite(before, admin)
	})

	It("refuses an adoption forged with the id annotation or a pending-create mark, and deleting those objects deletes nobody", func() {
		ns := newPrefixedNamespace(untrustedPrefix)
		mallory := attacker(ns)
		admin, err := sim.AddUser(simulator.UserSeed{Email: email("admin"), Status: cipherscale.StatusActive, Roles: []string{adminRole()}})
		Expect(err).NotTo(HaveOccurred())
		before := settledWrites()

		byID := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forged-id",
				Annotations: map[string]string{iamv1alpha1.AnnotationUserID: admin.ID}},
			Spec: iamv1alpha1.CipherscaleUserSpec{Email: admin.Email, DeletionPolicy: iamv1alpha1.DeletionPolicyDelete},
		}
		Expect(mallory.Create(ctx, byID)).To(Succeed())
		expectStalled(byID, iamv1alpha1.ReasonAdoptionNotAllowed)
		Expect(byID.Status.ID).To(BeEmpty())

		pending := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forged-mark",
				Annotations: map[string]string{iamv1alpha1.AnnotationCreatePending: "2020-01-01T00:00:00Z"}},
			Spec: iamv1alpha1.CipherscaleUserSpec{Email: strings.ToUpper(admin.Email), DeletionPolicy: iamv1alpha1.DeletionPolicyDelete},
		}
		Expect(mallory.Create(ctx, pending)).To(Succeed())
		// The older object is refused and owns no email: the forged mark is judged on its own,
		// and refused too.
		expectStalled(pending, iamv1alpha1.ReasonAdoptionNotAllowed)
		Expect(pending.Status.ID).To(BeEmpty())
		Expect(mallory.Delete(ctx, byID)).To(Succeed())
		expectStalled(pending, iamv1alpha1.ReasonAdoptionNotAllowed)
		Expect(pending.Annotations).NotTo(HaveKey(iamv1alpha1.AnnotationUserID))
		Expect(mallory.Delete(ctx, pending)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(pending), pending)) &&
				apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(byID), byID))
		}, 20*time.Second).Should(BeTrue())
		expectNoWrite(before, admin)
	})

	It("leaves the tenant owner alone: no role, profile, group or active-state change", func() {
		ns := newPrefixedNamespace(adoptingPrefix)
		mallory := attacker(ns)
		group := seedGroup("owners-group")
		owner, err := sim.AddUser(simulator.UserSeed{Email: email("owner"), Status: cipherscale.StatusActive, IsOwner: true,
			FirstName: "Olivia", LastName: "Owner", Image: "https://example.com/o.png", Roles: []string{adminRole()}, Groups: []string{group}})
		Expect(err).NotTo(HaveOccurred())
		before := settledWrites()

		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner"},
			Spec: iamv1alpha1.CipherscaleUserSpec{Email: owner.Email, Roles: ids(), Groups: ids(),
				FirstName: ptr("Pwned"), Image: ptr("https://evil.example.com/x.png"), Active: ptr(false)},
		}
		Expect(mallory.Create(ctx, u)).To(Succeed())
		expectStalled(u, iamv1alpha1.ReasonOwnerProtected)
		Expect(conditionOf(u, iamv1alpha1.ConditionReady)().Message).To(ContainSubstring("read-only"))
		expectNoWrite(before, owner)

		// A spec that matches the owner is Ready, and still writes nothing.
		update(u, func() {
			u.Spec = iamv1alpha1.CipherscaleUserSpec{Email: owner.Email, FirstName: ptr("Olivia"), Groups: ids(group)}
		})
		Eventually(conditionOf(u, iamv1alpha1.ConditionReady), 20*time.Second, 100*time.Millisecond).
			Should(haveCondition(u, metav1.ConditionTrue, iamv1alpha1.ReasonOwnerProtected))

		// Nor does a membership take the owner out of a group, or deleting the object. The group
		// has a member, whose inherited roles show it carries no privileged role: a group whose
		// roles cannot be told is privileged, and the membership would be NotAllowed.
		other := seedGroup("other")
		_, err = sim.AddUser(simulator.UserSeed{Email: email("other-member"), Status: cipherscale.StatusActive, Groups: []string{other}})
		Expect(err).NotTo(HaveOccurred())
		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner-into-other"},
			Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: other, Members: []iamv1alpha1.Member{{Email: owner.Email}}},
		}
		Expect(mallory.Create(ctx, m)).To(Succeed())
		Expect(mallory.Delete(ctx, u)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)) }, 20*time.Second).Should(BeTrue())
		expectNoWrite(before, owner)
		Expect(eventsOf(m)()).NotTo(ContainElement(iamv1alpha1.EventMembersUpdated))
		Eventually(func() []iamv1alpha1.MemberState {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(m), m)).To(Succeed())
			var out []iamv1alpha1.MemberState
			for _, st := range m.Status.Members {
				out = append(out, st.State)
			}
			return out
		}, 20*time.Second).Should(Equal([]iamv1alpha1.MemberState{iamv1alpha1.MemberStateOwnerProtected}))
	})

	It("keeps the tenant owner in a group whose Authoritative membership does not declare it", func() {
		ns := newNamespace() // trusted: the membership may be Authoritative
		group := seedGroup("auth-owner")
		owner, err := sim.AddUser(simulator.UserSeed{Email: email("owner"), Status: cipherscale.StatusActive, IsOwner: true, Groups: []string{group}})
		Expect(err).NotTo(HaveOccurred())
		member, err := sim.AddUser(simulator.UserSeed{Email: email("member"), Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		m := newMembership(ns, "auth", group, iamv1alpha1.MembershipPolicyAuthoritative, byEmail(member.Email))
		expectReady(m)
		Expect(groupIDs(tenantUser(member.Email))).To(ContainElement(normalize(group)))
		Consistently(func() []string { return groupIDs(tenantUser(owner.Email)) }, 2*resync).Should(ContainElement(normalize(group)))
	})

	It("refuses the Admin role to a namespace that may not grant it, before creating anyone", func() {
		ns := newPrefixedNamespace(adoptingPrefix)
		mallory := attacker(ns)
		admin := adminRole()
		before := settledWrites()
		mail := email("mallory")

		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mallory"},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: mail, Roles: ids(admin)},
		}
		Expect(mallory.Create(ctx, u)).To(Succeed())
		expectStalled(u, iamv1alpha1.ReasonNotAllowed)
		Expect(conditionOf(u, iamv1alpha1.ConditionReady)().Message).To(ContainSubstring(plan.NormalizeID(admin)))
		Consistently(func() int { return usersWithEmail(mail) }, resync).Should(BeZero())
		expectNoWrite(before, cipherscale.User{Email: mail})

		// Created without it, then asked for it: refused, the user left as it is.
		update(u, func() { u.Spec.Roles = ids() })
		expectReady(u)
		created := tenantUser(mail)
		before = settledWrites()
		update(u, func() { u.Spec.Roles = ids(admin) })
		expectStalled(u, iamv1alpha1.ReasonNotAllowed)
		expectNoWrite(before, created)
	})

	It("refuses an Authoritative membership: nobody is removed from the group", func() {
		ns := newPrefixedNamespace(adoptingPrefix)
		mallory := attacker(ns)
		group := seedGroup("ops")
		var others []cipherscale.User
		for i := range 2 {
			o, err := sim.AddUser(simulator.UserSeed{Email: email(fmt.Sprintf("ops%d", i)), Status: cipherscale.StatusActive, Groups: []string{group}})
			Expect(err).NotTo(HaveOccurred())
			others = append(others, o)
		}
		mine := newUser(ns, "mine", email("mine"))
		expectReady(mine)
		before := settledWrites()

		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "only-me"},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, Policy: iamv1alpha1.MembershipPolicyAuthoritative,
				Members: []iamv1alpha1.Member{{UserRef: &iamv1alpha1.UserReference{Name: "mine"}}}},
		}
		Expect(mallory.Create(ctx, m)).To(Succeed())
		expectStalled(m, iamv1alpha1.ReasonNotAllowed)
		// Nothing is written for it, not even the add its members would get from an Additive one.
		expectNoWrite(before, others...)
		Expect(mallory.Delete(ctx, m)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(m), m)) }, 20*time.Second).Should(BeTrue())
		expectNoWrite(before, others...)
	})
})

var _ = Describe("Trust boundaries: memberships", func() {
	It("refuses email members nobody created for the namespace: creating and deleting the membership removes no one", func() {
		ns := newPrefixedNamespace(untrustedPrefix)
		mallory := attacker(ns)
		group := seedGroup("finance")
		victim, err := sim.AddUser(simulator.UserSeed{Email: email("cfo"), Status: cipherscale.StatusActive, Groups: []string{group}})
		Expect(err).NotTo(HaveOccurred())
		stranger, err := sim.AddUser(simulator.UserSeed{Email: email("stranger"), Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		before := settledWrites()

		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "finance"},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group,
				Members: []iamv1alpha1.Member{{Email: victim.Email}, {Email: stranger.Email}}},
		}
		Expect(mallory.Create(ctx, m)).To(Succeed())
		expectStalled(m, iamv1alpha1.ReasonAdoptionNotAllowed)
		expectNoWrite(before, victim, stranger)
		// Deleting it (deletionPolicy Delete) would have released the pairs it declared.
		Expect(mallory.Delete(ctx, m)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(m), m)) }, 20*time.Second).Should(BeTrue())
		expectNoWrite(before, victim, stranger)
	})
})

var _ = Describe("Trust boundaries: memberships and groups (issue 21, attacks 2 and 3)", func() {
	// seedMemberedGroup is a group with one member, so that the roles it carries can be told.
	seedMemberedGroup := func(name string, roles ...string) string {
		g := seedGroup(name, roles...)
		_, err := sim.AddUser(simulator.UserSeed{Email: email(name + "-member"), Status: cipherscale.StatusActive, Groups: []string{g}})
		Expect(err).NotTo(HaveOccurred())
		return g
	}

	It("a membership of another namespace naming by email a user a trusted namespace manages: the user's reconciler does not add the pair", func() {
		platform := newNamespace()
		victim := newUser(platform, "victim", email("victim"))
		expectReady(victim)
		ns := newPrefixedNamespace(adoptingPrefix) // may adopt, not privileged
		mallory := attacker(ns)
		group := seedMemberedGroup("eng")
		victimUser := tenantUser(victim.Spec.Email)
		before := settledWrites()

		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "steal"},
			Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, Members: []iamv1alpha1.Member{{Email: victim.Spec.Email}}},
		}
		Expect(mallory.Create(ctx, m)).To(Succeed())
		expectStalled(m, iamv1alpha1.ReasonNotAllowed)
		// The status says which member, and reads nothing of that user.
		Eventually(func() []iamv1alpha1.MemberStatus {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(m), m)).To(Succeed())
			return m.Status.Members
		}, 20*time.Second, 100*time.Millisecond).Should(Equal([]iamv1alpha1.MemberStatus{
			{Email: normalize(victim.Spec.Email), State: iamv1alpha1.MemberStateNotAllowed}}))
		expectNoWrite(before, victimUser)
	})

	It("refuses a privileged group to a namespace that may not manage it, in a CipherscaleUser and in a membership", func() {
		ns := newPrefixedNamespace(adoptingPrefix)
		mallory := attacker(ns)
		admins := seedMemberedGroup("admins", adminRole())
		mail := email("wants-admin")
		before := settledWrites()

		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wants-admin"},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: mail, Groups: ids(admins)},
		}
		Expect(mallory.Create(ctx, u)).To(Succeed())
		expectStalled(u, iamv1alpha1.ReasonNotAllowed)
		Expect(conditionOf(u, iamv1alpha1.ConditionReady)().Message).To(ContainSubstring(plan.NormalizeID(admins)))
		Consistently(func() int { return usersWithEmail(mail) }, resync).Should(BeZero())
		expectNoWrite(before, cipherscale.User{Email: mail})

		// Created without it; a membership of the group naming it by reference is refused.
		update(u, func() { u.Spec.Groups = nil })
		expectReady(u)
		created := tenantUser(mail)
		before = settledWrites()
		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "self-admin"},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: admins,
				Members: []iamv1alpha1.Member{{UserRef: &iamv1alpha1.UserReference{Name: "wants-admin"}}}},
		}
		Expect(mallory.Create(ctx, m)).To(Succeed())
		expectStalled(m, iamv1alpha1.ReasonNotAllowed)
		expectNoWrite(before, created)
	})
})

var _ = Describe("Invitation cap", func() {
	It("sends at most 4 invitations beyond the create for 40 resend requests in a minute", func() {
		ns := newNamespace()
		mail := email("spam")
		u := newUser(ns, "spam", mail)
		expectReady(u)
		Expect(sim.InvitationsSent(mail)).To(Equal(1))
		for i := range 40 {
			setAnnotation(u, iamv1alpha1.AnnotationResendInvitation, fmt.Sprint(i))
		}
		Eventually(func() int { return sim.InvitationsSent(mail) }, 20*time.Second).Should(Equal(5))
		Eventually(eventsOf(u), 10*time.Second).Should(ContainElement(iamv1alpha1.EventInvitationDeferred))
		Consistently(func() int { return sim.InvitationsSent(mail) }, 2*resync).Should(Equal(5))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
		Expect(u.Status.Invitation.SentTimes).To(HaveLen(5))
	})
})
