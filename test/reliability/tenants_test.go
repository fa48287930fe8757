package reliability

import (
	"fmt"
	"net/http"
	"slices"
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

// Tenant isolation: tenant A is ClusterCipherscaleTenant/default, tenant B a CipherscaleTenant
// with its own simulator. A 429 storm on B must not slow A.
var _ = Describe("two tenants, one throttled", func() {
	It("keeps the other tenant's pace, then converges the throttled one", func() {
		const (
			test  = "tenants"
			n     = 100
			storm = 20 * time.Second
		)
		simA, simB := startSim(), startSim()
		// Tenant A answers in 20 ms, as a real API does. Each condition is measured three times
		// and the best time kept.
		simA.SetFaults([]simulator.FaultRule{{LatencyMs: 20}})
		warm, nsB := newNamespace("tenant-a0"), newNamespace("tenant-b")
		aloneNS := []string{newNamespace("tenant-a1"), newNamespace("tenant-a1"), newNamespace("tenant-a1")}
		withNS := []string{newNamespace("tenant-a2"), newNamespace("tenant-a2"), newNamespace("tenant-a2")}
		// Every tenant's client at 20 requests/s with no burst, and every user of A needs a
		// profile write and a role patch after its create: about 200 calls per batch, so A's pace
		// is its rate limit (about 10 s a batch), as in production, and not the machine's
		// scheduling, which the other suites load in CI (at 50/s, where the operator needs more
		// CPU per second, a loaded machine moved the batches' times by half). A 429 storm of B
		// that held A's workers, or shared A's limiter or pause, would show as A falling behind.
		startManager(managerConfig{name: "manager", apiURL: simA.URL, namespaces: append(append([]string{warm, nsB}, aloneNS...), withNS...),
			tenant: rate(20, 1)})

		By("tenant B: a CipherscaleTenant of its namespace, its key in a Secret there")
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "tenant-b",
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/b"}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())
		tb := &iamv1alpha1.CipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "b"},
			Spec: iamv1alpha1.CipherscaleTenantSpec{
				APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: "tenant-b"},
				TenantSettings:  iamv1alpha1.TenantSettings{URL: simB.URL},
			},
		}
		Expect(k8s.Create(ctx, tb)).To(Succeed())
		Eventually(func() bool {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(tb), tb)
			return meta.IsStatusConditionTrue(tb.Status.Conditions, iamv1alpha1.ConditionReady)
		}, 30*time.Second, 100*time.Millisecond).Should(BeTrue())

		roleA := simA.role("isolation")
		By("warming up tenant A")
		createAll(userObjects(makeUsers(warm, "warm", 10, []string{roleA}, nil, true)))
		waitAllReady(time.Minute, 10, warm)

		// batch creates n users of tenant A in ns and returns how long until all were Ready.
		var declaredA []userSpec
		batch := func(ns, prefix, what string) time.Duration {
			specs := makeUsers(ns, prefix, n, []string{roleA}, nil, true)
			declaredA = append(declaredA, specs...)
			start := time.Now()
			createAll(userObjects(specs))
			d := waitAllReady(time.Minute, n, ns).Sub(start)
			figure(test, fmt.Sprintf("%d users of tenant A Ready, %s", n, what), d.Round(time.Millisecond).String())
			return d
		}

		// B's users: the same 100 objects, created to throttle and deleted again. They never reach
		// a create (the first read of B is refused), so their deletion is released at once.
		bUsers := makeUsers(nsB, "b", n, nil, nil, false)
		bObjects := func() []client.Object {
			objs := userObjects(bUsers)
			for _, o := range objs {
				o.(*iamv1alpha1.CipherscaleUser).Spec.TenantRef = &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "b"}
			}
			return objs
		}
		// throttleB creates B's objects and waits until B is throttled as a whole: the tenant's
		// own reconciler (woken by the new objects) found the storm and marked B not Ready, and
		// every object of B says so (InvalidTenant). The measured window then holds B's steady
		// throttled state, not the one-off status writes of its 100 objects going there.
		throttleB := func() {
			createAll(bObjects())
			bThrottled := func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tb), tb)).To(Succeed())
				c := meta.FindStatusCondition(tb.Status.Conditions, iamv1alpha1.ConditionReady)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(c.Reason).To(Equal(iamv1alpha1.ReasonAPIUnavailable))
				var list iamv1alpha1.CipherscaleUserList
				g.Expect(k8s.List(ctx, &list, client.InNamespace(nsB))).To(Succeed())
				throttledNow := 0
				for _, u := range list.Items {
					if c := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse &&
						c.Reason == iamv1alpha1.ReasonInvalidTenant {
						throttledNow++
					}
				}
				g.Expect(throttledNow).To(Equal(n))
			}
			Eventually(bThrottled, 30*time.Second, 100*time.Millisecond).Should(Succeed())
			// Two quiet seconds, as before A alone: the API server has written what B's objects
			// caused (their status, their events) before the window opens.
			Consistently(bThrottled, 2*time.Second, 200*time.Millisecond).Should(Succeed())
		}
		removeB := func() {
			Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(nsB))).To(Succeed())
			Eventually(func(g Gomega) {
				var list iamv1alpha1.CipherscaleUserList
				g.Expect(k8s.List(ctx, &list, client.InNamespace(nsB))).To(Succeed())
				g.Expect(list.Items).To(BeEmpty())
			}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
			Consistently(func() int { return readyIn(nsB).Total }, 2*time.Second, 200*time.Millisecond).Should(BeZero())
		}

		By("tenant B answering 429 to everything")
		simB.SetFaults([]simulator.FaultRule{{Status: http.StatusTooManyRequests, RetryAfterSeconds: 1}})
		stormStart := time.Now()
		// The two conditions alternate, three times each, and the best time of each is kept: the
		// other suites CI runs beside this one load the machine unevenly over time, and
		// alternating spreads that load over both conditions alike.
		var alone, with []time.Duration
		for i := range 3 {
			By(fmt.Sprintf("tenant A alone (%d of 3)", i+1))
			alone = append(alone, batch(aloneNS[i], "alone", fmt.Sprintf("A alone, %d of 3", i+1)))
			By(fmt.Sprintf("tenant A while B's %d objects are throttled (%d of 3)", n, i+1))
			throttleB()
			with = append(with, batch(withNS[i], "with", fmt.Sprintf("B throttled, %d of 3", i+1)))
			if i < 2 {
				removeB()
			}
		}
		aloneTime, withTime := slices.Min(alone), slices.Min(with)
		ratio := float64(withTime) / float64(aloneTime)
		figure(test, "A with B throttled / A alone (the best of three each, alternated)", fmt.Sprintf("%.2f", ratio))
		// B's pauses holding A's workers measured 2.59 before reconciles gave their worker back
		// during a pause.
		Expect(ratio).To(BeNumerically("<=", 1.2), "a 429 storm of tenant B slowed tenant A")
		Expect(readyIn(nsB).Ready).To(BeZero(), "B is still throttled: nothing of B can be Ready")
		throttled := 0
		for _, r := range simB.Stats().Requests {
			if r.Status == http.StatusTooManyRequests {
				throttled += r.Count
			}
		}
		figure(test, "429 answers of tenant B so far", fmt.Sprint(throttled))

		By("tenant B recovering after the storm")
		Eventually(func() time.Duration { return time.Since(stormStart) }, storm+time.Second, 100*time.Millisecond).
			Should(BeNumerically(">=", storm))
		simB.ClearFaults()
		recovered := time.Now()
		waitAllReady(90*time.Second, n, nsB)
		figure(test, fmt.Sprintf("%d users of tenant B Ready after the storm", n), time.Since(recovered).Round(time.Millisecond).String())
		expectTenant(simB, bUsers, nil)
		countsA, _ := simA.usersByEmail()
		for _, u := range bUsers {
			Expect(countsA[cipherscale.NormalizeEmail(u.Email)]).To(BeZero(), "%s reached tenant A", u.Name)
		}
		expectTenant(simA, declaredA, nil)
	})
})
