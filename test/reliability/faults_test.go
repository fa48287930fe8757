package reliability

import (
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// shape is the workload of the faults test: 100 users with a role and a group, and three
// memberships of three more groups (Additive by userRef, Additive by email, Authoritative by
// userRef) over 60 of them. The Authoritative group starts with a stray member nothing declares.
type shape struct {
	users       []userSpec
	memberships []client.Object
	// extra: the groups the memberships add, by normalized email.
	extra      map[string][]string
	authGroup  string
	strayEmail string
}

func (s shape) objects() []client.Object {
	return append(userObjects(s.users), s.memberships...)
}

func (s shape) total() int { return len(s.users) + len(s.memberships) }

func declareShape(sim *simEnv, ns string) shape {
	GinkgoHelper()
	role := sim.role("role")
	team := sim.group("team")
	byRef, byEmail, auth := sim.group("by-ref"), sim.group("by-email"), sim.group("authoritative")
	s := shape{
		users:      makeUsers(ns, "u", 100, []string{role}, []string{team}, false),
		extra:      map[string][]string{},
		authGroup:  auth,
		strayEmail: fmt.Sprintf("stray-%d@example.com", next()),
	}
	_, err := sim.AddUser(simulator.UserSeed{Email: s.strayEmail, Status: cipherscale.StatusActive, Groups: []string{auth}})
	Expect(err).NotTo(HaveOccurred())

	membership := func(name, group string, policy iamv1alpha1.MembershipPolicy, from, to int, ref bool) {
		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, Policy: policy},
		}
		for _, u := range s.users[from:to] {
			if ref {
				m.Spec.Members = append(m.Spec.Members, iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: u.Name}})
			} else {
				m.Spec.Members = append(m.Spec.Members, iamv1alpha1.Member{Email: u.Email})
			}
			e := cipherscale.NormalizeEmail(u.Email)
			s.extra[e] = append(s.extra[e], group)
		}
		s.memberships = append(s.memberships, m)
	}
	membership("by-ref", byRef, iamv1alpha1.MembershipPolicyAdditive, 0, 20, true)
	membership("by-email", byEmail, iamv1alpha1.MembershipPolicyAdditive, 20, 40, false)
	membership("authoritative", auth, iamv1alpha1.MembershipPolicyAuthoritative, 40, 60, true)
	return s
}

// expectShape checks the tenant against a shape, and that the stray member left the
// Authoritative group but stayed in the tenant.
func expectShape(sim *simEnv, s shape) {
	GinkgoHelper()
	expectTenant(sim, s.users, s.extra)
	stray, ok := sim.UserByEmail(s.strayEmail)
	Expect(ok).To(BeTrue(), "the stray user is left in the tenant")
	Expect(stray.GroupIDs()).NotTo(ContainElement(s.authGroup), "the Authoritative membership removes the undeclared member")
	Expect(sim.InvitationsSent(s.strayEmail)).To(BeZero())
}

var _ = Describe("API faults", func() {
	It("converges through 500s, dropped creates, latency spikes and 429 storms, creating and inviting everyone once, with at most 3x the calls of a fault-free run", func() {
		const test = "faults"
		sim := startSim()
		clean, faulty := newNamespace("faultfree"), newNamespace("faulty")
		startManager(managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{clean, faulty},
			leaseNS: leaseNamespace(fmt.Sprintf("lease-faults-%d", next()))})

		By("converging the shape without faults")
		first := declareShape(sim, clean)
		sim.ResetStats()
		start := time.Now()
		createAll(first.objects())
		done := waitAllReady(2*time.Minute, first.total(), clean)
		cleanStats := sim.Stats()
		expectShape(sim, first)
		figure(test, "fault-free run", fmt.Sprintf("%d objects Ready in %s, %s",
			first.total(), done.Sub(start).Round(100*time.Millisecond), statsSummary(cleanStats)))

		By("converging the same shape, fresh emails and groups, under faults")
		second := declareShape(sim, faulty)
		rate := func(f float64) *float64 { return &f }
		latency := simulator.FaultRule{LatencyMs: 2000, Rate: rate(0.05)}
		errors500 := simulator.FaultRule{Status: 500, Rate: rate(0.2)}
		storm := []simulator.FaultRule{
			latency,
			// The create is applied, then the connection is closed without an answer.
			{Route: cipherscale.RouteCreateUsers, Drop: true, Count: 3},
			{Status: 429, RetryAfterSeconds: 1, Rate: rate(0.3)},
			errors500,
		}
		var mu sync.Mutex
		converged := false
		sim.ResetStats()
		sim.SetFaults(storm)
		start = time.Now()
		// The 429 storm lasts 8s; 500s and latency spikes last until everything is Ready.
		stormEnd := time.AfterFunc(8*time.Second, func() {
			mu.Lock()
			defer mu.Unlock()
			if !converged {
				sim.SetFaults([]simulator.FaultRule{latency, errors500})
			}
		})
		createAll(second.objects())
		done = waitAllReady(3*time.Minute, second.total(), faulty)
		faultyStats := sim.Stats()
		mu.Lock()
		converged = true
		stormEnd.Stop()
		sim.ClearFaults()
		mu.Unlock()
		figure(test, "run with faults", fmt.Sprintf("%d objects Ready in %s, %s",
			second.total(), done.Sub(start).Round(100*time.Millisecond), statsSummary(faultyStats)))
		figure(test, "calls to convergence", fmt.Sprintf("fault-free %d, with faults %d (%.2fx; limit 3x)",
			cleanStats.Total, faultyStats.Total, float64(faultyStats.Total)/float64(cleanStats.Total)))

		// The drop rule comes before the status rules, so the first 3 create requests were
		// applied and their connections dropped. Creates gather while the tenant is busy, so the
		// 100 new users may take fewer than 3 requests: every one of them was dropped then.
		Expect(faultyStats.Count(cipherscale.RouteCreateUsers)).To(BeNumerically(">=", 1))
		Expect(faultyStats.Total).To(BeNumerically("<=", 3*cleanStats.Total))
		expectShape(sim, first)
		expectShape(sim, second)
		waitAllReady(time.Minute, first.total()+second.total(), clean, faulty)
	})
})
