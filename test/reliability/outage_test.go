package reliability

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// unavailable matches a CipherscaleUser that reports the API outage: Ready False and
// Reconciling True, both with the reason (APIUnavailable, or Deleting for an object being
// deleted) and for the current generation.
func unavailable(reason string) OmegaMatcher {
	return WithTransform(func(u *iamv1alpha1.CipherscaleUser) string {
		if u == nil {
			return "gone"
		}
		ready := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReady)
		rec := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReconciling)
		if ready == nil || rec == nil {
			return fmt.Sprintf("conditions %v", u.Status.Conditions)
		}
		return fmt.Sprintf("Ready=%s/%s Reconciling=%s/%s gen=%t", ready.Status, ready.Reason, rec.Status, rec.Reason,
			ready.ObservedGeneration == u.Generation && rec.ObservedGeneration == u.Generation)
	}, Equal(fmt.Sprintf("Ready=False/%s Reconciling=True/%s gen=true", reason, reason)))
}

var _ = Describe("an API outage", func() {
	It("reports APIUnavailable, keeps serving probes, holds deletions, and converges after recovery without a restart", func() {
		const test = "outage"
		sim := startSim()
		ns := newNamespace("outage")
		m := startManager(managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns},
			leaseNS: leaseNamespace(fmt.Sprintf("lease-outage-%d", next()))})
		role, team := sim.role("role"), sim.group("team")
		existing := makeUsers(ns, "old", 10, []string{role}, []string{team}, false)
		createAll(userObjects(existing))
		waitAllReady(time.Minute, len(existing), ns)

		By("answering every API call with 503")
		sim.SetFaults([]simulator.FaultRule{{Status: http.StatusServiceUnavailable}})
		down := time.Now()
		fresh := makeUsers(ns, "new", 5, []string{role}, []string{team}, false)
		createAll(userObjects(fresh))

		By("reporting the outage on new objects and, at their resync, on existing ones")
		for _, u := range append(append([]userSpec{}, fresh...), existing...) {
			Eventually(func() *iamv1alpha1.CipherscaleUser { return userObj(ns, u.Name) }, 12*time.Second, 100*time.Millisecond).
				Should(unavailable(iamv1alpha1.ReasonAPIUnavailable), u.Name)
		}
		reported := time.Since(down)
		obj := userObj(ns, existing[0].Name)
		msg := meta.FindStatusCondition(obj.Status.Conditions, iamv1alpha1.ConditionReady).Message
		Expect(msg).To(ContainSubstring("unavailable"))

		By("holding deletions while the API is down")
		deleted := existing[:3]
		for _, u := range deleted {
			Expect(k8s.Delete(ctx, u.object())).To(Succeed())
		}
		for _, u := range deleted {
			Eventually(func() *iamv1alpha1.CipherscaleUser { return userObj(ns, u.Name) }, 10*time.Second, 100*time.Millisecond).
				Should(unavailable(iamv1alpha1.ReasonDeleting), u.Name)
		}

		By("serving /healthz and /readyz all along, until the outage has lasted 15s")
		Consistently(func() []int { return []int{m.probe("/healthz"), m.probe("/readyz")} },
			max(time.Until(down.Add(15*time.Second)), 2*time.Second), 250*time.Millisecond).
			Should(Equal([]int{http.StatusOK, http.StatusOK}))
		for _, u := range deleted {
			obj := userObj(ns, u.Name)
			Expect(obj).NotTo(BeNil(), "%s is held by its finalizer", u.Name)
			Expect(obj.DeletionTimestamp).NotTo(BeNil())
			Expect(obj.Finalizers).To(ContainElement(iamv1alpha1.Finalizer))
			_, inTenant := sim.UserByEmail(u.Email)
			Expect(inTenant).To(BeTrue())
		}
		Expect(m.Exited()).To(BeFalse())
		outage := time.Since(down)

		By("recovering")
		sim.ClearFaults()
		up := time.Now()
		remaining := append(append([]userSpec{}, existing[3:]...), fresh...)
		waitAllReady(time.Minute, len(remaining), ns)
		converged := time.Since(up)
		for _, u := range deleted {
			Eventually(func() *iamv1alpha1.CipherscaleUser { return userObj(ns, u.Name) }, 30*time.Second, 100*time.Millisecond).Should(BeNil())
			_, inTenant := sim.UserByEmail(u.Email)
			Expect(inTenant).To(BeFalse(), "%s's tenant user is deleted", u.Name)
		}
		deletionsDone := time.Since(up)
		expectTenant(sim, remaining, nil)
		Expect(sim.Users()).To(HaveLen(len(remaining)))
		figure(test, "timeline", fmt.Sprintf("API down for %s; every object reported APIUnavailable %s into it; after recovery all Ready in %s, held deletions done in %s, by the same manager process (pid %d)",
			outage.Round(100*time.Millisecond), reported.Round(100*time.Millisecond), converged.Round(100*time.Millisecond),
			deletionsDone.Round(100*time.Millisecond), m.Cmd.Process.Pid))
		Expect(m.Exited()).To(BeFalse())

		By("releasing the finalizer of an object whose tenant user was deleted by hand")
		gone := remaining[0]
		byHand, err := cipherscale.New(cipherscale.Config{BaseURL: sim.URL, Key: cipherscale.StaticKey(apiKey)})
		Expect(err).NotTo(HaveOccurred())
		id := userObj(ns, gone.Name).Status.ID
		Expect(byHand.DeleteUser(ctx, id)).To(Succeed())
		start := time.Now()
		Expect(k8s.Delete(ctx, gone.object())).To(Succeed())
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: gone.Name}, &iamv1alpha1.CipherscaleUser{})
		}, 10*time.Second, 50*time.Millisecond).ShouldNot(Succeed())
		figure(test, "finalizer of a user already gone", fmt.Sprintf("object gone %s after the delete", time.Since(start).Round(10*time.Millisecond)))
		_, inTenant := sim.UserByEmail(gone.Email)
		Expect(inTenant).To(BeFalse())
	})
})
