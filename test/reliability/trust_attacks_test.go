package reliability

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
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
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// namespaceUser is a person whose only rights are a Role in one namespace over the operator's
// namespaced kinds (CipherscaleUsers, memberships, CipherscaleTenants), used through
// impersonation: no status subresource, nothing in another namespace.
func namespaceUser(ns string) client.Client {
	GinkgoHelper()
	c, err := devenv.NamespaceUser(ctx, k8s, cp.Config, ns, "cipherscaleusers", "cipherscalegroupmemberships", "cipherscaletenants")
	Expect(err).NotTo(HaveOccurred())
	return c
}

// readyOf returns the Ready condition of a CipherscaleUser, nil when it has none or is gone.
func readyOf(ns, name string) *metav1.Condition {
	u := userObj(ns, name)
	if u == nil {
		return nil
	}
	return meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReady)
}

// readyReasonOf is the reason of the Ready condition of a CipherscaleUser, "" without one.
func readyReasonOf(ns, name string) func() string {
	return func() string {
		if c := readyOf(ns, name); c != nil {
			return c.Reason
		}
		return ""
	}
}

// The trust boundary as seen by a person with rights in one namespace only, against the built
// manager and a ClusterCipherscaleTenant "prod" that selects the namespaces labeled for it,
// lets only "platform" adopt users, and deactivates undeclared users outside corp.example.
var _ = Describe("trust attacks from one namespace", Ordered, ContinueOnFailure, func() {
	const test = "trust attacks"
	var (
		sim                                   *simEnv
		cfg                                   managerConfig
		mgr                                   *manager
		tenantName                            string
		ref                                   *iamv1alpha1.TenantReference
		platform, teamA, teamB, evil, outside string
		mallory, outsider, teamAUser          client.Client
	)
	mail := func(local string) string { return fmt.Sprintf("%s-%d@corp.example", local, next()) }
	newUser := func(ns, name, email string) *iamv1alpha1.CipherscaleUser {
		return &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: email, TenantRef: ref},
		}
	}
	unchanged := func(before cipherscale.User) {
		GinkgoHelper()
		now, ok := sim.UserByID(before.ID)
		Expect(ok).To(BeTrue(), "user %s is gone", before.ID)
		Expect(now.Status).To(Equal(before.Status))
		Expect(now.FirstName).To(Equal(before.FirstName))
		Expect(normSorted(now.RoleIDs())).To(Equal(normSorted(before.RoleIDs())))
		Expect(normSorted(now.GroupIDs())).To(Equal(normSorted(before.GroupIDs())))
	}

	BeforeAll(func() {
		sim = startSim()
		defaultSim := startSim()
		run := next()
		tenantName = fmt.Sprintf("prod-%d", run)
		ref = &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: tenantName}
		label := "trust-attacks-" + fmt.Sprint(run)
		ns := func(prefix string, labels map[string]string) string {
			name := fmt.Sprintf("%s-%d", prefix, next())
			Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})).To(Succeed())
			return name
		}
		platform = ns("platform", map[string]string{label: "true", "adopt": label})
		teamA = ns("team-a", map[string]string{label: "true"})
		teamB = ns("team-b", map[string]string{label: "true"})
		evil = ns("evil", map[string]string{label: "true"})
		outside = ns("outside", nil)
		mallory, outsider, teamAUser = namespaceUser(evil), namespaceUser(outside), namespaceUser(teamA)

		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: platform, Name: "key",
			Annotations: map[string]string{"cipherscale.com/allowed-tenants": "ClusterCipherscaleTenant/" + tenantName}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())
		Expect(k8s.Create(ctx, &iamv1alpha1.ClusterCipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Name: tenantName},
			Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
				APIKeySecretRef:   iamv1alpha1.NamespacedSecretKeyReference{Namespace: platform, Name: "key"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: "true"}},
				Adoption:          &iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"adopt": label}}},
				TenantSettings: iamv1alpha1.TenantSettings{URL: sim.URL,
					// The resync the manager's --resync-interval gave every tenant before it became a tenant field.
					ResyncInterval: &metav1.Duration{Duration: resync},
					UndeclaredUsers: &iamv1alpha1.UndeclaredUsersSpec{Policy: iamv1alpha1.UndeclaredUsersDeactivate,
						Exclude: []string{"*@corp.example"}, GracePeriod: &metav1.Duration{Duration: time.Second}}},
			},
		})).To(Succeed())
		// Cluster tenants are served only by a manager that watches every namespace.
		cfg = managerConfig{name: "manager", apiURL: defaultSim.URL,
			args: []string{"--api-hosts", "127.0.0.1,localhost", "--allow-insecure-http"}}
		if !managerKnowsFlag("api-hosts") {
			cfg.args = nil
		}
		mgr = startManager(cfg)
		Eventually(func() bool {
			t := &iamv1alpha1.ClusterCipherscaleTenant{}
			return k8s.Get(ctx, client.ObjectKey{Name: tenantName}, t) == nil &&
				meta.IsStatusConditionTrue(t.Status.Conditions, iamv1alpha1.ConditionReady)
		}, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "the tenant is Ready")
	})

	It("attack 1: never trusts a forged id, even after a failed read of the tenant", func() {
		victim, err := sim.AddUser(simulator.UserSeed{Email: mail("cfo"), Status: cipherscale.StatusActive, FirstName: "Carla"})
		Expect(err).NotTo(HaveOccurred())
		forged := newUser(evil, "forged", victim.Email)
		forged.Annotations = map[string]string{iamv1alpha1.AnnotationUserID: victim.ID}
		forged.Spec.FirstName = ptrTo("Mallory")
		forged.Spec.Active = ptrTo(false)
		forged.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		Expect(mallory.Create(ctx, forged)).To(Succeed())
		Eventually(readyReasonOf(evil, "forged"), 30*time.Second, 100*time.Millisecond).Should(Equal(iamv1alpha1.ReasonAdoptionNotAllowed))

		By("letting every list answer 503 and touching the object")
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteListUsers, Status: 503}, {Route: cipherscale.RouteGetUser, Status: 503}})
		DeferCleanup(sim.ClearFaults) // the next specs share the tenant
		Expect(mallory.Get(ctx, client.ObjectKeyFromObject(forged), forged)).To(Succeed())
		forged.Annotations["touch"] = "1"
		Expect(mallory.Update(ctx, forged)).To(Succeed())
		Consistently(func() string { return userObj(evil, "forged").Status.ID }, 3*resync, 100*time.Millisecond).Should(BeEmpty())
		sim.ClearFaults()
		Consistently(func() string { return userObj(evil, "forged").Status.ID }, 3*resync, 100*time.Millisecond).Should(BeEmpty())
		unchanged(victim)

		By("deleting it: it never managed anyone, so it goes at once and touches no one")
		Expect(mallory.Delete(ctx, forged)).To(Succeed())
		Eventually(objectGone(forged), 20*time.Second).Should(BeTrue())
		unchanged(victim)
		figure(test, "attack 1", "forged id: AdoptionNotAllowed, status.id empty through a 503 storm and after; released at once; the user unchanged")
	})

	It("attack 4, squat: an object the tenant refuses owns no email", func() {
		By("an object the tenant refuses to namespace outside names an email first")
		squatted := mail("new-hire")
		Expect(outsider.Create(ctx, newUser(outside, "squat", squatted))).To(Succeed())
		Eventually(readyReasonOf(outside, "squat"), 30*time.Second, 100*time.Millisecond).Should(Equal(iamv1alpha1.ReasonInvalidTenant))
		Expect(teamAUser.Create(ctx, newUser(teamA, "new-hire", squatted))).To(Succeed())
		Eventually(func() bool { return isReady(userObj(teamA, "new-hire").Status.Conditions, 1) }, 30*time.Second, 100*time.Millisecond).
			Should(BeTrue(), func() string { return describe("new-hire", userObj(teamA, "new-hire").Status.Conditions) })
		_, created := sim.UserByEmail(squatted)
		Expect(created).To(BeTrue())
		figure(test, "attack 4, squat", "the later team-a object is Ready and created the user")
	})

	It("attack 4, shield: refused objects declare nobody to the undeclared-users policy", func() {
		// An undeclared user outside corp.example, named only by refused objects.
		shielded, err := sim.AddUser(simulator.UserSeed{Email: fmt.Sprintf("contractor-%d@shield.example", next()), Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		Expect(outsider.Create(ctx, newUser(outside, "shield", shielded.Email))).To(Succeed())
		Expect(mallory.Create(ctx, newUser(evil, "shield", shielded.Email))).To(Succeed())
		Eventually(func() cipherscale.Status {
			u, _ := sim.UserByID(shielded.ID)
			return u.Status.Normalized()
		}, time.Minute, 200*time.Millisecond).Should(Equal(cipherscale.StatusInactive))
		Expect(readyReasonOf(outside, "shield")()).To(Equal(iamv1alpha1.ReasonInvalidTenant))
		Expect(readyReasonOf(evil, "shield")()).To(Equal(iamv1alpha1.ReasonAdoptionNotAllowed))
		figure(test, "attack 4, shield", "the undeclared user named by an InvalidTenant and an AdoptionNotAllowed object was deactivated")
	})

	It("attack 4, offboarding: an AdoptionNotAllowed object does not keep platform from managing and removing a user", func() {
		leaver, err := sim.AddUser(simulator.UserSeed{Email: mail("leaver"), Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		Expect(mallory.Create(ctx, newUser(evil, "leaver", leaver.Email))).To(Succeed())
		Eventually(readyReasonOf(evil, "leaver"), 30*time.Second, 100*time.Millisecond).Should(Equal(iamv1alpha1.ReasonAdoptionNotAllowed))
		p := newUser(platform, "leaver", leaver.Email)
		p.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(func() string { return userObj(platform, "leaver").Status.ID }, 30*time.Second, 100*time.Millisecond).
			Should(Equal(leaver.ID), func() string { return describe("leaver", userObj(platform, "leaver").Status.Conditions) })
		Expect(k8s.Delete(ctx, p)).To(Succeed())
		Eventually(func() bool { _, ok := sim.UserByID(leaver.ID); return ok }, 30*time.Second, 100*time.Millisecond).Should(BeFalse())
		Expect(mallory.Delete(ctx, newUser(evil, "leaver", leaver.Email))).To(Succeed())
		figure(test, "attack 4, offboarding", "platform adopted and deleted the user an older AdoptionNotAllowed object in evil named")
	})

	It("attack 8: a paused object shows nothing of a user it may not manage", func() {
		role := sim.role("support")
		group := sim.group("finance")
		cfo, err := sim.AddUser(simulator.UserSeed{Email: mail("cfo"), Status: cipherscale.StatusActive, FirstName: "Carla",
			Roles: []string{role}, Groups: []string{group}})
		Expect(err).NotTo(HaveOccurred())
		peek := newUser(evil, "peek", cfo.Email)
		peek.Annotations = map[string]string{iamv1alpha1.AnnotationPaused: "true"}
		peek.Spec.FirstName = ptrTo("Carla")
		Expect(mallory.Create(ctx, peek)).To(Succeed())
		Eventually(readyReasonOf(evil, "peek"), 30*time.Second, 100*time.Millisecond).Should(Equal(iamv1alpha1.ReasonPaused))
		// Two resyncs: whatever a pass would show is shown by then.
		Consistently(func(g Gomega) {
			st := userObj(evil, "peek").Status
			g.Expect(st.State).To(BeEmpty())
			g.Expect(st.Roles).To(BeEmpty())
			g.Expect(st.Groups).To(BeEmpty())
			g.Expect(st.ID).To(BeEmpty())
			g.Expect(st.LastSyncTime).To(BeNil())
		}, 2*resync, 100*time.Millisecond).Should(Succeed())
		msg := readyOf(evil, "peek").Message
		Expect(msg).NotTo(ContainSubstring("firstName"))
		Expect(msg).To(ContainSubstring("nothing of that user is shown"))
		unchanged(cfo)
		Expect(mallory.Delete(ctx, peek)).To(Succeed())
		figure(test, "attack 8", "paused object naming an active user with a role and a group: Ready=False Paused, no state, roles, groups or differences shown: "+msg)
	})

	It("never releases silently the finalizer of an object whose tenant it can no longer use, and says what releases it", func() {
		obj := newUser(teamB, "kept", mail("kept"))
		obj.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		Expect(k8s.Create(ctx, obj)).To(Succeed())
		Eventually(func() string { return userObj(teamB, "kept").Status.ID }, 30*time.Second, 100*time.Millisecond).ShouldNot(BeEmpty())
		id := userObj(teamB, "kept").Status.ID

		By("taking the namespace out of the tenant's selector, then deleting the object")
		nsObj := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: teamB}, nsObj)).To(Succeed())
		nsObj.Labels = map[string]string{"kubernetes.io/metadata.name": teamB}
		Expect(k8s.Update(ctx, nsObj)).To(Succeed())
		Eventually(readyReasonOf(teamB, "kept"), 30*time.Second, 100*time.Millisecond).Should(Equal(iamv1alpha1.ReasonInvalidTenant))
		Expect(k8s.Delete(ctx, obj)).To(Succeed())
		Eventually(func() string {
			if c := readyOf(teamB, "kept"); c != nil {
				return c.Message
			}
			return ""
		}, 30*time.Second, 100*time.Millisecond).Should(ContainSubstring("deletionPolicy is set to Orphan"))
		Consistently(func() bool { return userObj(teamB, "kept") != nil }, 2*resync, 200*time.Millisecond).Should(BeTrue(), "the finalizer is kept")
		_, ok := sim.UserByID(id)
		Expect(ok).To(BeTrue())
		msg := readyOf(teamB, "kept").Message

		By("setting deletionPolicy Orphan releases it, and the user stays")
		cur := userObj(teamB, "kept")
		cur.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyOrphan
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(objectGone(cur), 30*time.Second).Should(BeTrue())
		_, ok = sim.UserByID(id)
		Expect(ok).To(BeTrue())
		figure(test, "no silent release", "Stalled while its tenant may not be used: "+msg)
	})

	It("reports a user deleted during a resend of its invitation as gone, not as an invalid reference, and creates it again", func() {
		obj := newUser(teamA, "resend", mail("invitee"))
		Expect(teamAUser.Create(ctx, obj)).To(Succeed())
		Eventually(func() string { return userObj(teamA, "resend").Status.ID }, 30*time.Second, 100*time.Millisecond).ShouldNot(BeEmpty())
		id := userObj(teamA, "resend").Status.ID

		By("deleting the user in the tenant at the moment its invitation is resent")
		var deleted atomic.Bool
		sim.SetHook(func(route string, r *http.Request) {
			if route == cipherscale.RouteResendInvitation && strings.Contains(r.URL.Path, id) && deleted.CompareAndSwap(false, true) {
				_ = sim.DeleteUser(id)
			}
		})
		DeferCleanup(func() { sim.SetHook(nil) })
		Expect(teamAUser.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		obj.Annotations = map[string]string{iamv1alpha1.AnnotationResendInvitation: "1"}
		Expect(teamAUser.Update(ctx, obj)).To(Succeed())
		Eventually(deleted.Load, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
		Eventually(func() string { return userObj(teamA, "resend").Status.ID }, 30*time.Second, 100*time.Millisecond).
			ShouldNot(Or(BeEmpty(), Equal(id)), "a new user is created for the object")
		Eventually(func() bool {
			return isReady(userObj(teamA, "resend").Status.Conditions, userObj(teamA, "resend").Generation)
		},
			30*time.Second, 100*time.Millisecond).Should(BeTrue())
		Expect(eventsWithReason(teamA, iamv1alpha1.ReasonInvalidReference)).NotTo(ContainElement("resend"))
		Expect(teamAUser.Delete(ctx, obj)).To(Succeed())
		figure(test, "deleted during a resend", "no InvalidReference; the object created its user again")
	})

	It("restores an object from metadata and spec under a fresh operator: same id, Ready, and its deletion removes the person; a copied proof verifies nowhere else", func() {
		email := mail("restored")
		obj := newUser(teamA, "restored", email)
		obj.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		obj.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyIfExists
		Expect(teamAUser.Create(ctx, obj)).To(Succeed())
		Eventually(func() bool { return isReady(userObj(teamA, "restored").Status.Conditions, 1) }, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
		obj = userObj(teamA, "restored")
		id := obj.Status.ID
		Expect(id).NotTo(BeEmpty())
		Expect(obj.Annotations).To(HaveKeyWithValue(iamv1alpha1.AnnotationUserID, id))
		Expect(obj.Annotations).To(HaveKey(iamv1alpha1.AnnotationUserIDProof))
		_, err := sim.Accept(id)
		Expect(err).NotTo(HaveOccurred())

		By("copying the proof to an object in another namespace: it does not verify there")
		copied := newUser(evil, "restored", email)
		copied.Annotations = map[string]string{
			iamv1alpha1.AnnotationUserID:      id,
			iamv1alpha1.AnnotationUserIDProof: obj.Annotations[iamv1alpha1.AnnotationUserIDProof],
		}
		copied.Spec.FirstName = ptrTo("Mallory")
		Expect(mallory.Create(ctx, copied)).To(Succeed())
		Eventually(readyReasonOf(evil, "restored"), 30*time.Second, 100*time.Millisecond).Should(Equal(iamv1alpha1.ReasonAdoptionNotAllowed))
		Expect(userObj(evil, "restored").Status.ID).To(BeEmpty())
		Expect(mallory.Delete(ctx, copied)).To(Succeed())
		Eventually(objectGone(copied), 20*time.Second).Should(BeTrue())
		live, ok := sim.UserByID(id)
		Expect(ok).To(BeTrue())
		Expect(live.FirstName).NotTo(Equal("Mallory"))

		By("losing the cluster: the object's backup is its metadata and spec, no status")
		backup := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: obj.Name, Labels: obj.Labels, Annotations: obj.Annotations},
			Spec:       obj.Spec,
		}
		mgr.Stop(10 * time.Second)
		obj = userObj(teamA, "restored") // its status moved since (the user accepted)
		obj.Finalizers = nil
		Expect(k8s.Update(ctx, obj)).To(Succeed())
		Expect(k8s.Delete(ctx, obj)).To(Succeed())
		Eventually(objectGone(obj), 20*time.Second).Should(BeTrue())
		// A fresh operator: this spec is the container's last, as the manager it starts is
		// stopped when the spec ends.
		mgr = startManager(cfg)
		Expect(k8s.Create(ctx, backup)).To(Succeed())
		Eventually(func() bool { return isReady(userObj(teamA, "restored").Status.Conditions, 1) }, 30*time.Second, 100*time.Millisecond).
			Should(BeTrue(), func() string { return describe("restored", userObj(teamA, "restored").Status.Conditions) })
		Expect(userObj(teamA, "restored").Status.ID).To(Equal(id))
		Expect(eventsWithReason(teamA, iamv1alpha1.ReasonAlreadyExists)).NotTo(ContainElement("restored"))
		Expect(eventsWithReason(teamA, iamv1alpha1.ReasonAdoptionNotAllowed)).NotTo(ContainElement("restored"))
		n := 0
		for _, u := range sim.Users() {
			if cipherscale.NormalizeEmail(u.Email) == cipherscale.NormalizeEmail(email) {
				n++
			}
		}
		Expect(n).To(Equal(1))

		By("deleting the restored object removes the person")
		Expect(teamAUser.Delete(ctx, backup)).To(Succeed())
		Eventually(func() bool { _, ok := sim.UserByID(id); return ok }, 30*time.Second, 100*time.Millisecond).Should(BeFalse())
		Eventually(objectGone(backup), 20*time.Second).Should(BeTrue())
		figure(test, "restore", fmt.Sprintf("restored without status in a namespace that may not adopt: Ready on %s; its deletion deleted the person; the copied proof was refused", id))
	})

	AfterAll(func() {
		Expect(strings.ToLower(mgr.Log())).NotTo(ContainSubstring("panic"))
		Expect(mgr.Log()).NotTo(ContainSubstring(apiKey))
	})
})

func ptrTo[T any](v T) *T { return &v }

// managerKnowsFlag reports whether the built manager has a flag (the URL policy flags arrive on
// another branch).
func managerKnowsFlag(name string) bool {
	out, _ := exec.Command(managerBin, "--help").CombinedOutput()
	return strings.Contains(string(out), "-"+name+" ")
}
