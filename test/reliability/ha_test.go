package reliability

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// controller-runtime's leader election defaults, which the manager keeps.
const (
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
	// takeoverLimit: the follower sees the last renewal at its next try, the lease expires
	// leaseDuration after that, and it takes it at its next try; client-go jitters the tries
	// between retryPeriod and 2.2 retryPeriods. 3s of slack for a busy machine.
	takeoverLimit = leaseDuration + 2*(retryPeriod*22/10) + 3*time.Second
)

var _ = Describe("high availability", func() {
	It("lets only the leader act, and hands over within the lease duration when the leader is killed, creating and inviting nobody twice", func() {
		const test = "ha"
		sim := startSim()
		ns := newNamespace("ha")
		lease := leaseNamespace(fmt.Sprintf("lease-ha-%d", next()))
		role, team := sim.role("role"), sim.group("team")

		// Both replicas use ClusterCipherscaleTenant/default, whose URL is a counting proxy in
		// front of the simulator: it tells the calls of each replica apart by the process that
		// holds the connection.
		proxy := startProxy(sim.URL)
		replicas := make([]*manager, 2)
		for i := range replicas {
			replicas[i] = startManager(managerConfig{name: fmt.Sprintf("replica-%d", i), apiURL: proxy.URL,
				namespaces: []string{ns}, leaseNS: lease})
		}
		pid := func(i int) int { return replicas[i].Cmd.Process.Pid }
		var leader int
		Eventually(func() int {
			n := 0
			for i, r := range replicas {
				if r.leads() {
					leader, n = i, n+1
				}
			}
			return n
		}, leaseDuration+2*retryPeriod, 100*time.Millisecond).Should(Equal(1), "exactly one replica leads")
		follower := 1 - leader
		figure(test, "leader", fmt.Sprintf("replica-%d leads, replica-%d follows", leader, follower))

		By("converging a first batch with the leader alone")
		sim.ResetStats()
		since := time.Now()
		first := makeUsers(ns, "a", 40, []string{role}, []string{team}, false)
		createAll(userObjects(first))
		waitAllReady(time.Minute, len(first), ns)
		// A few resyncs more, to see that the follower stays silent.
		Consistently(func() int { return proxy.countFrom(pid(follower), "", since) }, 2*resync, 200*time.Millisecond).Should(BeZero())
		Expect(proxy.countFrom(pid(leader), "", since)).To(Equal(sim.Stats().Total), "every API call came from the leader")
		figure(test, "calls while one leads", fmt.Sprintf("leader %d, follower %d, simulator %d",
			proxy.countFrom(pid(leader), "", since), proxy.countFrom(pid(follower), "", since), sim.Stats().Total))

		By("killing the leader with SIGKILL in the middle of a second batch")
		// Creates take 400ms, so that the kill likely lands while one is in flight.
		sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteCreateUsers, LatencyMs: 400}})
		second := makeUsers(ns, "b", 40, []string{role}, []string{team}, true)
		createAll(userObjects(second))
		Eventually(func() int { return readyIn(ns).Ready }, 30*time.Second, 20*time.Millisecond).
			Should(BeNumerically(">=", len(first)+len(second)/4))
		replicas[leader].Kill()
		killed := time.Now()
		readyAtKill := readyIn(ns).Ready
		Expect(proxy.countFromBetween(pid(follower), "", since, killed)).To(BeZero(), "the follower made no API call while the other led")
		third := makeUsers(ns, "c", 20, []string{role}, []string{team}, false)
		createAll(userObjects(third))

		By("taking over within the lease duration")
		var acquired time.Duration
		Eventually(func() bool {
			acquired = time.Since(killed)
			return replicas[follower].leads()
		}, takeoverLimit+5*time.Second, 100*time.Millisecond).Should(BeTrue(), "the follower takes the lease")
		Eventually(func() int { return proxy.countFrom(pid(follower), "", killed) }, 10*time.Second, 50*time.Millisecond).Should(BeNumerically(">", 0))
		firstCall := proxy.firstFrom(pid(follower), killed)
		all := append(append(append([]userSpec{}, first...), second...), third...)
		done := waitAllReady(time.Minute, len(all), ns)
		figure(test, "takeover", fmt.Sprintf("leader killed with %d/%d Ready; follower took the lease %s after the kill (limit %s: lease %s + 2 jittered retry periods + 3s slack), made its first API call %s after the kill; all %d Ready %s after the kill",
			readyAtKill, len(first)+len(second), acquired.Round(100*time.Millisecond), takeoverLimit, leaseDuration,
			firstCall.Sub(killed).Round(100*time.Millisecond), len(all), done.Sub(killed).Round(100*time.Millisecond)))
		Expect(acquired).To(BeNumerically("<=", takeoverLimit))

		expectTenant(sim, all, nil)
		Expect(sim.Users()).To(HaveLen(len(all)))
		figure(test, "calls in all", statsSummary(sim.Stats()))
	})
})
