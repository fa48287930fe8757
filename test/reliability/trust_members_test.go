package reliability

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// labeledNamespace creates a namespace with labels.
func labeledNamespace(prefix string, labels map[string]string) string {
	GinkgoHelper()
	name := fmt.Sprintf("%s-%d", prefix, next())
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})).To(Succeed())
	return name
}

// groupsOf returns the normalized, sorted group ids of the tenant user with the email; nil when
// the tenant has none.
func groupsOf(sim *simEnv, email string) []string {
	_, users := sim.usersByEmail()
	u, ok := users[cipherscale.NormalizeEmail(email)]
	if !ok {
		return nil
	}
	return normSorted(u.GroupIDs())
}

// conditionIs matches an object's Ready and Stalled conditions: Stalled True with reason, or,
// for reason "" , Ready True.
func conditionIs(reason string) OmegaMatcher {
	return WithTransform(func(conds []metav1.Condition) string {
		if reason == "" {
			if c := meta.FindStatusCondition(conds, iamv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
				return "Ready"
			}
		} else if c := meta.FindStatusCondition(conds, iamv1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason {
			return "Stalled/" + reason
		}
		return describe("object", conds)
	}, Equal(map[bool]string{true: "Ready", false: "Stalled/" + reason}[reason == ""]))
}

// membershipStatus reads a membership's status with the admin client (the namespace user may
// read it too; status is the operator's).
func membershipStatus(ns, name string) iamv1alpha1.CipherscaleGroupMembershipStatus {
	m := &iamv1alpha1.CipherscaleGroupMembership{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, m); err != nil {
		return iamv1alpha1.CipherscaleGroupMembershipStatus{}
	}
	return m.Status
}

// memberStates returns the state of each member in status.members, by email or userRef, and
// whether any member's userId is set.
func memberStates(st iamv1alpha1.CipherscaleGroupMembershipStatus) (map[string]iamv1alpha1.MemberState, bool) {
	out := map[string]iamv1alpha1.MemberState{}
	ids := false
	for _, m := range st.Members {
		key := m.Email
		if m.UserRef != "" {
			key = "ref:" + m.UserRef
		}
		out[key] = m.State
		ids = ids || m.UserID != ""
	}
	return out, ids
}

var _ = Describe("memberships and privileged groups from a namespace-only user", Ordered, func() {
	const test = "trust: memberships"
	var (
		sim                                    *simEnv
		tenantName                             string
		platform, teamB, evil, outside, keysNS string
		mallory, outsider                      client.Client
		admins, eng                            string
		alice, bob                             userSpec
	)
	ref := func() *iamv1alpha1.TenantReference {
		return &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: tenantName}
	}
	membership := func(ns, name, group string, members ...iamv1alpha1.Member) *iamv1alpha1.CipherscaleGroupMembership {
		return &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, TenantRef: ref(),
				Policy: iamv1alpha1.MembershipPolicyAdditive, DeletionPolicy: iamv1alpha1.MembershipDeletionPolicyDelete, Members: members},
		}
	}
	byEmail := func(e string) iamv1alpha1.Member { return iamv1alpha1.Member{Email: e} }
	byRef := func(n string) iamv1alpha1.Member {
		return iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: n}}
	}
	userIn := func(ns, name, email string, groups ...string) *iamv1alpha1.CipherscaleUser {
		u := userSpec{Namespace: ns, Name: name, Email: email}.object()
		u.Spec.TenantRef = ref()
		if groups != nil {
			g := append([]string{}, groups...)
			u.Spec.Groups = &g
		}
		return u
	}
	userConds := func(ns, name string) func() []metav1.Condition {
		return func() []metav1.Condition {
			if u := userObj(ns, name); u != nil {
				return u.Status.Conditions
			}
			return nil
		}
	}
	membershipConds := func(ns, name string) func() []metav1.Condition {
		return func() []metav1.Condition { return membershipStatus(ns, name).Conditions }
	}
	// untouched checks, over two resyncs, that alice and bob are in no group and that their
	// objects stay Ready.
	untouched := func() {
		GinkgoHelper()
		Consistently(func() [][]string { return [][]string{groupsOf(sim, alice.Email), groupsOf(sim, bob.Email)} }, 3*resync, 100*time.Millisecond).
			Should(Equal([][]string{{}, {}}), "a membership of another namespace changed the groups of users platform and team-b manage")
		Expect(userConds(alice.Namespace, alice.Name)()).To(conditionIs(""))
		Expect(userConds(bob.Namespace, bob.Name)()).To(conditionIs(""))
	}

	BeforeAll(func() {
		sim = startSim()
		tenantName = fmt.Sprintf("prod-%d", next())
		sel := "cipherscale.com/tenant-" + tenantName
		// platform may adopt and is privileged; team-b and evil may only use the tenant;
		// outside is privileged by label but not selected by the tenant's namespaceSelector.
		platform = labeledNamespace("platform", map[string]string{sel: "yes", "adopt": tenantName, "privileged": tenantName})
		teamB = labeledNamespace("team-b", map[string]string{sel: "yes"})
		evil = labeledNamespace("evil", map[string]string{sel: "yes"})
		outside = labeledNamespace("outside", map[string]string{"adopt": tenantName, "privileged": tenantName})
		keysNS = newNamespace("keys")
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: keysNS, Name: "key",
				// D2: the Secret consents to the tenant that uses it.
				Annotations: map[string]string{"cipherscale.com/allowed-tenants": iamv1alpha1.KindClusterCipherscaleTenant + "/" + tenantName}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())

		By("a group carrying the ADMIN role and one carrying a support role, each with a member, so that their roles can be told")
		adminRole, err := sim.AddRole(simulator.RoleSeed{Name: fmt.Sprintf("Admin-%d", next()), Type: cipherscale.RoleTypeAdmin})
		Expect(err).NotTo(HaveOccurred())
		g, err := sim.AddGroup(simulator.GroupSeed{Name: fmt.Sprintf("Admins-%d", next()), Roles: []string{adminRole.ID}})
		Expect(err).NotTo(HaveOccurred())
		admins = g.ID
		g, err = sim.AddGroup(simulator.GroupSeed{Name: fmt.Sprintf("Eng-%d", next()), Roles: []string{sim.role("support")}})
		Expect(err).NotTo(HaveOccurred())
		eng = g.ID
		for _, grp := range []string{admins, eng} {
			_, err := sim.AddUser(simulator.UserSeed{Email: fmt.Sprintf("seed-%d@example.com", next()), Status: cipherscale.StatusActive, Groups: []string{grp}})
			Expect(err).NotTo(HaveOccurred())
		}

		// Cluster tenants are served only by a manager that watches every namespace.
		startManager(managerConfig{name: "manager", apiURL: sim.URL})
		t := &iamv1alpha1.ClusterCipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Name: tenantName},
			Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
				APIKeySecretRef:   iamv1alpha1.NamespacedSecretKeyReference{Namespace: keysNS, Name: "key"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{sel: "yes"}},
				Adoption:          &iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"adopt": tenantName}}},
				TenantSettings: iamv1alpha1.TenantSettings{URL: sim.URL,
					// The resync the manager's --resync-interval gave every tenant before it became a tenant field.
					ResyncInterval: &metav1.Duration{Duration: resync},
					Privileged:     &iamv1alpha1.PrivilegedSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"privileged": tenantName}}}},
			},
		}
		Expect(k8s.Create(ctx, t)).To(Succeed())
		Eventually(func() bool {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(t), t)).To(Succeed())
			return meta.IsStatusConditionTrue(t.Status.Conditions, iamv1alpha1.ConditionReady)
		}, 30*time.Second, 100*time.Millisecond).Should(BeTrue())

		By("alice, managed in platform, and bob, managed in team-b, both created by the operator, in no group")
		alice = userSpec{Namespace: platform, Name: "alice", Email: fmt.Sprintf("alice-%d@example.com", next())}
		bob = userSpec{Namespace: teamB, Name: "bob", Email: fmt.Sprintf("bob-%d@example.com", next())}
		Expect(k8s.Create(ctx, userIn(alice.Namespace, alice.Name, alice.Email))).To(Succeed())
		Expect(k8s.Create(ctx, userIn(bob.Namespace, bob.Name, bob.Email))).To(Succeed())
		for _, u := range []userSpec{alice, bob} {
			Eventually(userConds(u.Namespace, u.Name), 30*time.Second, 100*time.Millisecond).Should(conditionIs(""))
		}
		Expect(groupsOf(sim, alice.Email)).To(BeEmpty())
		Expect(groupsOf(sim, bob.Email)).To(BeEmpty())

		mallory = namespaceUser(evil)
		outsider = namespaceUser(outside)
	})

	It("attack 2: a membership in evil naming by email users that platform and team-b manage puts neither in its group; its own user is; the status says which", func() {
		start := time.Now()
		own := userIn(evil, "mallory", fmt.Sprintf("mallory-%d@example.com", next()))
		Expect(mallory.Create(ctx, own)).To(Succeed())
		Eventually(userConds(evil, "mallory"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(""))

		m := membership(evil, "steal", eng, byEmail(alice.Email), byEmail(bob.Email), byRef("mallory"))
		Expect(mallory.Create(ctx, m)).To(Succeed())
		Eventually(membershipConds(evil, "steal"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonNotAllowed))
		// evil's own user, by reference, is put in the group: the membership acts on its own people.
		Eventually(func() []string { return groupsOf(sim, own.Spec.Email) }, 20*time.Second, 100*time.Millisecond).
			Should(Equal(normSorted([]string{eng})))
		untouched()

		st := membershipStatus(evil, "steal")
		states, _ := memberStates(st)
		Expect(states).To(Equal(map[string]iamv1alpha1.MemberState{
			cipherscale.NormalizeEmail(alice.Email): iamv1alpha1.MemberStateNotAllowed,
			cipherscale.NormalizeEmail(bob.Email):   iamv1alpha1.MemberStateNotAllowed,
			"ref:mallory":                           iamv1alpha1.MemberStateMember,
		}))
		for _, mem := range st.Members {
			if mem.State == iamv1alpha1.MemberStateNotAllowed {
				Expect(mem.UserID).To(BeEmpty(), "the status reads a user this namespace may not act on")
			}
		}
		c := meta.FindStatusCondition(st.Conditions, iamv1alpha1.ConditionStalled)
		Expect(c.Message).To(ContainSubstring("2 members are users that a CipherscaleUser of another namespace manages"))
		Expect(c.Message).To(ContainSubstring("nothing is written for them"))
		Expect(c.Message).NotTo(ContainSubstring(platform))
		Expect(c.Message).NotTo(ContainSubstring(teamB))

		By("deleting it (deletionPolicy Delete) takes its own user out, and touches nobody else")
		Expect(mallory.Delete(ctx, m)).To(Succeed())
		Eventually(func() []string { return groupsOf(sim, own.Spec.Email) }, 20*time.Second, 100*time.Millisecond).Should(BeEmpty())
		untouched()
		figure(test, "attack 2", fmt.Sprintf("a membership in evil naming 2 users of platform and team-b: Stalled/NotAllowed, 0 of them added over %s, its own user added and removed (%s)",
			3*resync, time.Since(start).Round(100*time.Millisecond)))
	})

	It("attack 2: a membership from a namespace the tenant does not select is InvalidTenant and writes nothing, even where the privileged selector would select it", func() {
		m := membership(outside, "steal", eng, byEmail(alice.Email), byEmail(bob.Email))
		Expect(outsider.Create(ctx, m)).To(Succeed())
		Eventually(membershipConds(outside, "steal"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonInvalidTenant))
		untouched()
		states, ids := memberStates(membershipStatus(outside, "steal"))
		Expect(states).To(BeEmpty())
		Expect(ids).To(BeFalse())
		Expect(outsider.Delete(ctx, m)).To(Succeed())
		Eventually(objectGone(m), 20*time.Second).Should(BeTrue())
		untouched()
	})

	It("attack 3: a privileged group needs a privileged namespace, in users and memberships alike; nothing is written", func() {
		start := time.Now()
		By("the reproduction of the issue: a membership of the ADMIN group naming platform's and team-b's users")
		repro := membership(evil, "admins", admins, byEmail(alice.Email), byEmail(bob.Email))
		Expect(mallory.Create(ctx, repro)).To(Succeed())
		Eventually(membershipConds(evil, "admins"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonNotAllowed))
		untouched()

		By("a CipherscaleUser asking for the ADMIN group: refused before the create")
		want := userIn(evil, "wants-admin", fmt.Sprintf("wants-admin-%d@example.com", next()), admins)
		Expect(mallory.Create(ctx, want)).To(Succeed())
		Eventually(userConds(evil, "wants-admin"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonNotAllowed))
		c := meta.FindStatusCondition(userObj(evil, "wants-admin").Status.Conditions, iamv1alpha1.ConditionStalled)
		Expect(c.Message).To(ContainSubstring(normSorted([]string{admins})[0]))
		Consistently(func() []string { return groupsOf(sim, want.Spec.Email) }, 2*resync, 100*time.Millisecond).Should(BeNil(), "the user was created")

		By("created with an ordinary group, then asked for the ADMIN group: refused, left as it was")
		plain := userIn(evil, "plain", fmt.Sprintf("plain-%d@example.com", next()), eng)
		Expect(mallory.Create(ctx, plain)).To(Succeed())
		Eventually(userConds(evil, "plain"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(""))
		Expect(groupsOf(sim, plain.Spec.Email)).To(Equal(normSorted([]string{eng})))
		Expect(mallory.Get(ctx, client.ObjectKeyFromObject(plain), plain)).To(Succeed())
		plain.Spec.Groups = &[]string{eng, admins}
		Expect(mallory.Update(ctx, plain)).To(Succeed())
		Eventually(userConds(evil, "plain"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonNotAllowed))
		Consistently(func() []string { return groupsOf(sim, plain.Spec.Email) }, 2*resync, 100*time.Millisecond).
			Should(Equal(normSorted([]string{eng})))

		By("a membership of the ADMIN group naming evil's own user by reference")
		self := membership(evil, "self-admin", admins, byRef("plain"))
		Expect(mallory.Create(ctx, self)).To(Succeed())
		Eventually(membershipConds(evil, "self-admin"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonNotAllowed))
		// Back to an ordinary spec.groups: the user's reconciler would add the pair if the
		// membership counted.
		Expect(mallory.Get(ctx, client.ObjectKeyFromObject(plain), plain)).To(Succeed())
		plain.Spec.Groups = nil
		Expect(mallory.Update(ctx, plain)).To(Succeed())
		Eventually(userConds(evil, "plain"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(""))
		Consistently(func() []string { return groupsOf(sim, plain.Spec.Email) }, 3*resync, 100*time.Millisecond).
			Should(Equal(normSorted([]string{eng})), "a membership of a privileged group from evil was written")
		Expect(membershipConds(evil, "self-admin")()).To(conditionIs(iamv1alpha1.ReasonNotAllowed))
		states, ids := memberStates(membershipStatus(evil, "self-admin"))
		Expect(states).To(BeEmpty())
		Expect(ids).To(BeFalse())

		By("the same membership from platform, which the tenant trusts with privileged changes, is carried out")
		ok := membership(platform, "admins", admins, byRef("alice"))
		Expect(k8s.Create(ctx, ok)).To(Succeed())
		Eventually(membershipConds(platform, "admins"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(""))
		Expect(groupsOf(sim, alice.Email)).To(Equal(normSorted([]string{admins})))
		Expect(groupsOf(sim, bob.Email)).To(BeEmpty())
		figure(test, "attack 3", fmt.Sprintf("spec.groups and memberships naming a group that carries ADMIN from evil: NotAllowed, nothing written; from platform: done (%s)",
			time.Since(start).Round(100*time.Millisecond)))
	})

	It("attack 3: a group whose roles cannot be told is privileged, until the tenant lists its privileged groups", func() {
		g, err := sim.AddGroup(simulator.GroupSeed{Name: fmt.Sprintf("New-%d", next()), Roles: []string{}})
		Expect(err).NotTo(HaveOccurred())
		fresh := g.ID
		u := userIn(evil, "fresh", fmt.Sprintf("fresh-%d@example.com", next()), fresh)
		Expect(mallory.Create(ctx, u)).To(Succeed())
		Eventually(userConds(evil, "fresh"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonNotAllowed))
		Expect(groupsOf(sim, u.Spec.Email)).To(BeNil())

		By("spec.privileged.groups lists the ADMIN group only: the new group is ordinary")
		t := &iamv1alpha1.ClusterCipherscaleTenant{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: tenantName}, t)).To(Succeed())
		t.Spec.Privileged.Groups = &[]iamv1alpha1.ID{admins}
		Expect(k8s.Update(ctx, t)).To(Succeed())
		Eventually(userConds(evil, "fresh"), 30*time.Second, 100*time.Millisecond).Should(conditionIs(""))
		Expect(groupsOf(sim, u.Spec.Email)).To(Equal(normSorted([]string{fresh})))
		// The ADMIN group is still refused.
		Consistently(membershipConds(evil, "admins"), 2*resync, 100*time.Millisecond).Should(conditionIs(iamv1alpha1.ReasonNotAllowed))
		Expect(groupsOf(sim, bob.Email)).To(BeEmpty())
	})
})
