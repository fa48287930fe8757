package reliability

import (
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// apiClient is a person's client of the simulated tenant, as the Cipherscale console would be.
func apiClient(sim *simEnv) *cipherscale.Client {
	GinkgoHelper()
	c, err := cipherscale.New(cipherscale.Config{BaseURL: sim.URL, Key: cipherscale.StaticKey(apiKey), QPS: 300, Burst: 50})
	Expect(err).NotTo(HaveOccurred())
	return c
}

func eventCount(ns, reason string) int {
	return len(eventsWithReason(ns, reason))
}

func eventsWithReason(ns, reason string) []string {
	var list eventsv1.EventList
	Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, e.Regarding.Name)
		}
	}
	return out
}

func objectGone(obj client.Object) func() bool {
	return func() bool {
		return k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj) != nil
	}
}

var _ = Describe("identity", func() {
	It("offboards every user while others delete users and list pages are slow", func() {
		const test, managed, bystanders = "offboarding", 150, 250
		sim := startSim()
		ns := newNamespace("offboard")
		// Users no object manages, made first: deleting them shifts every later page.
		Expect(sim.SeedUsers(bystanders, fmt.Sprintf("bystander-%d-%%d@example.com", next()))).To(Succeed())
		users := makeUsers(ns, "o", managed, nil, nil, false)
		objs := userObjects(users)
		for _, o := range objs {
			o.(*iamv1alpha1.CipherscaleUser).Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyDelete
		}
		// 150 removals on purpose: no removal budget (the mass deletion spec tests the budget).
		startManager(managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns},
			tenant: noRemovalBudget})
		createAll(objs)
		waitAllReady(time.Minute, managed, ns)

		By("slowing list pages while a person deletes the bystanders one by one")
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteListUsers, LatencyMs: 150}})
		var bystanderIDs []string
		for _, u := range sim.Users() {
			if len(u.Email) > 10 && u.Email[:10] == "bystander-" {
				bystanderIDs = append(bystanderIDs, u.ID)
			}
		}
		Expect(bystanderIDs).To(HaveLen(bystanders))
		person := apiClient(sim)
		var deleted atomic.Int32
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			for _, id := range bystanderIDs {
				Expect(person.DeleteUser(ctx, id)).To(Succeed())
				deleted.Add(1)
			}
		}()
		Eventually(deleted.Load, 30*time.Second, 5*time.Millisecond).Should(BeNumerically(">=", bystanders/4))
		By("deleting all the CipherscaleUsers in the middle of it")
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(ns))).To(Succeed())
		Eventually(done, time.Minute).Should(BeClosed())
		Eventually(func() int { return readyIn(ns).Total }, time.Minute, 100*time.Millisecond).Should(BeZero())

		counts, _ := sim.usersByEmail()
		left := 0
		for _, u := range users {
			left += counts[cipherscale.NormalizeEmail(u.Email)]
		}
		figure(test, "left in the tenant", fmt.Sprintf("%d of %d users whose CipherscaleUser (deletionPolicy Delete) was deleted while %d other users were deleted and list pages took 150ms; %s",
			left, managed, bystanders, statsSummary(sim.Stats())))
		Expect(left).To(BeZero())
	})

	It("keeps the users it created through a SIGKILL before any status write (adoptionPolicy Never)", func() {
		const test, n = "kill-before-status", 40
		sim := startSim()
		ns := newNamespace("killstatus")
		users := makeUsers(ns, "k", n, nil, nil, true)
		objs := userObjects(users)
		for _, o := range objs {
			o.(*iamv1alpha1.CipherscaleUser).Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
		}
		// A worker per object, so that every create is sent before the first pass ends.
		cfg := managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns},
			args: []string{"--max-concurrent-reconciles", "64"}}
		m := startManager(cfg)
		// The profile is written after the create: slow profile writes hold every pass between
		// the create and its status write.
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteUpdateProfile, LatencyMs: 10000}})
		createAll(objs)
		Eventually(func() int { return len(sim.Users()) }, 30*time.Second, 10*time.Millisecond).Should(Equal(n))
		m.Kill()
		withID := withStatusID(ns)
		figure(test, "at the kill", fmt.Sprintf("%d users created, %d objects with status.id", len(sim.Users()), withID))
		Expect(withID).To(BeZero(), "the kill must land before any status write")
		sim.ClearFaults()

		start := time.Now()
		startManager(cfg)
		waitAllReady(time.Minute, n, ns)
		figure(test, "after the restart", fmt.Sprintf("%d objects Ready in %s; %d AlreadyExists events; %s", n,
			time.Since(start).Round(10*time.Millisecond), eventCount(ns, iamv1alpha1.ReasonAlreadyExists), statsSummary(sim.Stats())))
		Expect(sim.Users()).To(HaveLen(n), "one user per email")
		expectTenant(sim, users, nil)
		for _, u := range users {
			obj := userObj(ns, u.Name)
			got, _ := sim.UserByEmail(u.Email)
			Expect(obj.Status.ID).To(Equal(got.ID), "status.id of %s", u.Name)
			Expect(obj.Annotations).To(HaveKeyWithValue(iamv1alpha1.AnnotationUserID, got.ID))
		}
		Expect(eventCount(ns, iamv1alpha1.ReasonAlreadyExists)).To(BeZero())
	})

	It("finds the same user for an object restored without status under a fresh operator", func() {
		sim := startSim()
		ns := newNamespace("restore")
		cfg := managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns}}
		m := startManager(cfg)
		spec := makeUsers(ns, "r", 1, nil, nil, true)[0]
		obj := spec.object()
		obj.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
		obj.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyOrphan
		createAll([]client.Object{obj})
		waitAllReady(30*time.Second, 1, ns)
		obj = userObj(ns, spec.Name)
		id := obj.Status.ID
		Expect(id).NotTo(BeEmpty())

		By("backing up metadata and spec, deleting with Orphan, restarting the operator, restoring")
		backup := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: obj.Name, Labels: obj.Labels, Annotations: obj.Annotations},
			Spec:       obj.Spec,
		}
		Expect(k8s.Delete(ctx, obj)).To(Succeed())
		Eventually(objectGone(obj), 30*time.Second).Should(BeTrue())
		m.Stop(10 * time.Second)
		startManager(cfg)
		createAll([]client.Object{backup})
		waitAllReady(30*time.Second, 1, ns)
		restored := userObj(ns, spec.Name)
		figure("restore", "restored object", fmt.Sprintf("id before %s, after %s; %d AlreadyExists events", id, restored.Status.ID, eventCount(ns, iamv1alpha1.ReasonAlreadyExists)))
		Expect(restored.Status.ID).To(Equal(id))
		Expect(eventCount(ns, iamv1alpha1.ReasonAlreadyExists)).To(BeZero())
		Expect(sim.Users()).To(HaveLen(1))
	})

	It("removes the pair of a membership deleted after its user's object", func() {
		sim := startSim()
		ns := newNamespace("memafter")
		group := sim.group("team")
		startManager(managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns}})
		spec := makeUsers(ns, "m", 1, nil, nil, false)[0]
		u := spec.object()
		u.Spec.DeletionPolicy = iamv1alpha1.DeletionPolicyOrphan
		mem := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team"},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group,
				Members: []iamv1alpha1.Member{{UserRef: &iamv1alpha1.UserReference{Name: spec.Name}}}},
		}
		createAll([]client.Object{u, mem})
		waitAllReady(30*time.Second, 2, ns)
		live, _ := sim.UserByEmail(spec.Email)
		Expect(normSorted(live.GroupIDs())).To(Equal(normSorted([]string{group})))

		Expect(k8s.Delete(ctx, u)).To(Succeed())
		Eventually(objectGone(u), 30*time.Second).Should(BeTrue())
		Expect(k8s.Delete(ctx, mem)).To(Succeed())
		Eventually(objectGone(mem), 30*time.Second).Should(BeTrue())
		live, ok := sim.UserByEmail(spec.Email)
		Expect(ok).To(BeTrue(), "the user stays (Orphan)")
		figure("membership-after-user", "groups of the user after both deletions", fmt.Sprint(live.GroupIDs()))
		Expect(live.GroupIDs()).To(BeEmpty())
	})

	It("costs at most 3 list calls per idle resync interval, whatever the tenant's size, with memberships, one waiting on a paused user", func() {
		// 300 users the objects manage, beside 10,000 no object names (undeclared, ignored).
		const test, n, others = "steady-state", 300, 10000
		sim := startSim()
		Expect(sim.SeedUsers(others, fmt.Sprintf("other-%d-%%d@example.com", next()))).To(Succeed())
		ns := newNamespace("steady")
		groupA, groupB := sim.group("a"), sim.group("b")
		users := makeUsers(ns, "s", n-10, nil, nil, false)
		objs := userObjects(users)
		// Ten users no object manages, members of a membership by email.
		var emailMembers []iamv1alpha1.Member
		for i := range 10 {
			mail := fmt.Sprintf("contractor-%d-%d@example.com", next(), i)
			_, err := sim.AddUser(simulator.UserSeed{Email: mail, Status: cipherscale.StatusActive})
			Expect(err).NotTo(HaveOccurred())
			emailMembers = append(emailMembers, iamv1alpha1.Member{Email: mail})
		}
		var refMembers []iamv1alpha1.Member
		for _, u := range users[:100] {
			refMembers = append(refMembers, iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: u.Name}})
		}
		paused := makeUsers(ns, "paused", 1, nil, nil, false)[0].object()
		paused.Annotations = map[string]string{iamv1alpha1.AnnotationPaused: "true"}
		objs = append(objs,
			&iamv1alpha1.CipherscaleGroupMembership{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "refs"},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: groupA, Members: refMembers}},
			&iamv1alpha1.CipherscaleGroupMembership{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "emails"},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: groupB, Members: emailMembers}},
			&iamv1alpha1.CipherscaleGroupMembership{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waits"},
				Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: groupB,
					Members: []iamv1alpha1.Member{{UserRef: &iamv1alpha1.UserReference{Name: paused.Name}}}}},
			paused)
		startManager(managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns}})
		createAll(objs)
		// Everything Ready but the paused user and the membership waiting on it.
		Eventually(func() int { return readyIn(ns).Ready }, 2*time.Minute, 100*time.Millisecond).Should(Equal(len(objs) - 2))
		Eventually(func() bool {
			var m iamv1alpha1.CipherscaleGroupMembership
			if k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waits"}, &m) != nil {
				return false
			}
			c := readyCondition(m.Status.Conditions)
			return c != nil && c.Reason == iamv1alpha1.ReasonWaitingForUser &&
				len(m.Status.Conditions) > 0 && stalled(m.Status.Conditions)
		}, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "the membership waiting on a paused user is Stalled")
		Expect(sim.Users()).To(HaveLen(n+others), "the tenant holds N users and the others")

		By("measuring four idle resync intervals")
		sim.ResetStats()
		start := time.Now()
		// A full read of the tenant would be ceil((n+others)/100)+1 calls: between full reads
		// (fullResyncInterval, 1h) a resync reads only what changed (one call when nothing did).
		const intervals, perInterval = 4, 3
		Consistently(func() int { return sim.Stats().Count(cipherscale.RouteListUsers) }, intervals*resync, 50*time.Millisecond).
			Should(BeNumerically("<=", intervals*perInterval))
		st := sim.Stats()
		lists := st.Count(cipherscale.RouteListUsers)
		figure(test, "list calls", fmt.Sprintf("%d list calls in %s (%d resync intervals of %s) with N=%d tenant users, %d objects; budget %d per interval (a full read: %d calls); %s",
			lists, time.Since(start).Round(10*time.Millisecond), intervals, resync, n+others, len(objs), perInterval, (n+others+99)/100+1, statsSummary(st)))
		Expect(writesIn(st)).To(BeZero(), "an idle tenant gets no writes")
	})
})

func stalled(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == iamv1alpha1.ConditionStalled && c.Status == metav1.ConditionTrue {
			return true
		}
	}
	return false
}

// writesIn counts the calls of the stats that change the tenant.
func writesIn(st simulator.Stats) int {
	w := 0
	for _, r := range st.Requests {
		switch r.Route {
		case cipherscale.RouteListUsers, cipherscale.RouteGetUser, cipherscale.RouteUserRoles:
		default:
			w += r.Count
		}
	}
	return w
}
