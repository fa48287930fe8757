package reliability

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// withStatusID counts the CipherscaleUsers of a namespace whose status records a tenant id.
func withStatusID(ns string) int {
	var list iamv1alpha1.CipherscaleUserList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return -1
	}
	n := 0
	for _, u := range list.Items {
		if u.Status.ID != "" {
			n++
		}
	}
	return n
}

var _ = Describe("crashes", func() {
	It("brings 300 users to the tenant exactly once through five SIGKILLs of the manager", func() {
		const test, n = "crash", 300
		sim := startSim()
		ns := newNamespace("crash")
		role, team := sim.role("role"), sim.group("team")
		users := makeUsers(ns, "c", n, []string{role}, []string{team}, true)
		// Without leader election: a restarted replica would wait out the killed one's lease (15s)
		// five times. The lease hand-over is the high availability test's subject.
		// A lower QPS spreads the convergence over several seconds so that the kills land in it.
		cfg := managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns},
			tenant: rate(60, 20)}
		m := startManager(cfg)
		// Creates take 400ms, so that kills land while a create is in flight: the simulator
		// applies it even though the process that sent it is gone, as a real service would.
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, LatencyMs: 400}})

		rnd := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), 7))
		start := time.Now()
		createAll(userObjects(users))
		var kills []string
		for i, base := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
			// A random moment within the next 8% of the convergence.
			at := int((base + rnd.Float64()*0.08) * n)
			Eventually(func() int { return readyIn(ns).Ready }, 2*time.Minute, 20*time.Millisecond).
				Should(BeNumerically(">=", at))
			m.Kill() // SIGKILL
			killed := time.Since(start)
			r := readyIn(ns)
			recorded := withStatusID(ns)
			kills = append(kills, fmt.Sprintf("#%d at %s (%d/%d Ready, %d with status.id, %d tenant users)",
				i+1, killed.Round(10*time.Millisecond), r.Ready, n, recorded, len(sim.Users())))
			m = startManager(cfg)
		}
		done := waitAllReady(3*time.Minute, n, ns)
		figure(test, "kills", strings.Join(kills, "; "))
		figure(test, "convergence", fmt.Sprintf("%d users Ready %s after they were created, through 5 kills and restarts; %s",
			n, done.Sub(start).Round(10*time.Millisecond), statsSummary(sim.Stats())))

		var events eventsv1.EventList
		Expect(k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		reasons := map[string]int{}
		for _, e := range events.Items {
			reasons[e.Reason]++
		}
		figure(test, "events", fmt.Sprintf("Created %d, Adopted %d (created by a killed process whose status write was lost)",
			reasons[iamv1alpha1.EventCreated], reasons[iamv1alpha1.EventAdopted]))

		Expect(sim.Users()).To(HaveLen(n), "the tenant holds the declared users and nobody else")
		expectTenant(sim, users, nil)
		for _, u := range users {
			obj := userObj(ns, u.Name)
			Expect(obj).NotTo(BeNil())
			got, ok := sim.UserByEmail(u.Email)
			Expect(ok).To(BeTrue())
			Expect(obj.Status.ID).To(Equal(got.ID), "status.id of %s", u.Name)
		}
	})
})
