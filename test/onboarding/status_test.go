package onboarding

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/controller"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// The status command against an operator that runs in this process, watching one namespace
// (the round trip leaves 1,000 objects of the default tenant in "default"), with tenant
// objects whose state the operator writes: a mass removal held by the budget, a refused key.
var _ = Describe("kubectl cipherscale status", Ordered, func() {
	const (
		ns        = "status-team"
		prod      = "status-prod"
		refused   = "status-refused"
		allowedAn = "cipherscale.com/allowed-tenants"
	)
	var kubeEnv []string
	var sim *simulator.Server

	status := func(args ...string) result {
		GinkgoHelper()
		return run(kubeEnv, append([]string{"status"}, args...)...)
	}

	BeforeAll(func() {
		kubeEnv = []string{"KUBECONFIG=" + cp.Kubeconfig}
		sim = simulator.New(apiKey)
		url, stop, err := sim.Start("127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(stop)

		ensureNamespace(ns)
		ensureNamespace("cipherscale-system")
		for name, key := range map[string]string{prod: apiKey, refused: apiKey + "-revoked"} {
			Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: "cipherscale-system", Name: name,
					Annotations: map[string]string{allowedAn: "ClusterCipherscaleTenant/" + name}},
				Data: map[string][]byte{"api-key": []byte(key)},
			}))).To(Succeed())
		}
		two := int32(2)
		for _, name := range []string{prod, refused} {
			t := &iamv1alpha1.ClusterCipherscaleTenant{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
					APIKeySecretRef:   iamv1alpha1.NamespacedSecretKeyReference{Namespace: "cipherscale-system", Name: name, Key: "api-key"},
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
					TenantSettings: iamv1alpha1.TenantSettings{
						URL:           url,
						RemovalBudget: &iamv1alpha1.RemovalBudgetSpec{PerHour: &two},
					},
				},
			}
			Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, t))).To(Succeed())
		}

		By("running the operator in this process, watching " + ns + " and the tenant objects")
		mctx, stopMgr := context.WithCancel(ctx)
		mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
			Scheme: devenv.Scheme(),
			Cache: cache.Options{DefaultTransform: controller.CacheTransform(),
				DefaultNamespaces: map[string]cache.Config{ns: {}, "cipherscale-system": {}}},
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(controller.Setup(mctx, mgr, controller.Options{
			ResyncInterval:          2 * time.Second,
			MaxConcurrentReconciles: 4,
			// The simulators serve plain http on loopback, which the operator's URL policy
			// allows only when told so.
			URLPolicy: devenv.TestURLPolicy,
		})).To(Succeed())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = mgr.Start(mctx)
		}()
		DeferCleanup(func() {
			stopMgr()
			<-done
		})
	})

	tenantReady := func(name string) func(Gomega) metav1.ConditionStatus {
		return func(g Gomega) metav1.ConditionStatus {
			var t iamv1alpha1.ClusterCipherscaleTenant
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, &t)).To(Succeed())
			c := meta.FindStatusCondition(t.Status.Conditions, iamv1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			return c.Status
		}
	}

	It("exits 0 when the tenant and all its objects are Ready", func() {
		Eventually(tenantReady(prod), time.Minute, 200*time.Millisecond).Should(Equal(metav1.ConditionTrue))
		for i := range 5 {
			u := &iamv1alpha1.CipherscaleUser{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("leaver-%d", i)},
				Spec: iamv1alpha1.CipherscaleUserSpec{
					Email:          fmt.Sprintf("leaver-%d@example.com", i),
					TenantRef:      &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: prod},
					DeletionPolicy: iamv1alpha1.DeletionPolicyDelete,
				},
			}
			Expect(k8s.Create(ctx, u)).To(Succeed())
		}
		kubectl("wait", "--for=condition=Ready", "csu", "--all", "-n", ns, "--timeout=60s")
		Eventually(func() []cipherscale.User { return sim.Users() }, 30*time.Second).Should(HaveLen(5))

		r := status("--tenant", "ClusterCipherscaleTenant/"+prod)
		Expect(r.code).To(Equal(0), r.stdout+r.stderr)
		Expect(r.stdout).To(HavePrefix("ClusterCipherscaleTenant/" + prod + ": Ready\n"))
		Expect(r.stdout).To(ContainSubstring("Objects:     5: 5 Ready, 0 Reconciling, 0 Stalled"))
		Expect(r.stdout).To(HaveSuffix("Everything is Ready.\n"))
	})

	It("exits 2 on a mass removal held by the budget, names what waits and how to let it through", func() {
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(ns))).To(Succeed())
		Eventually(func(g Gomega) {
			var t iamv1alpha1.ClusterCipherscaleTenant
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: prod}, &t)).To(Succeed())
			g.Expect(t.Status.RemovalBudget).NotTo(BeNil())
			g.Expect(t.Status.RemovalBudget.Waiting).To(BeEquivalentTo(3))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		Expect(sim.Users()).To(HaveLen(3), "the budget let 2 of the 5 removals through")

		r := status("--tenant", "ClusterCipherscaleTenant/"+prod)
		Expect(r.code).To(Equal(2), r.stdout+r.stderr)
		Expect(r.stdout).To(ContainSubstring("Removals:    2 spent in the last hour (budget 2 per hour); 3 waiting"))
		Expect(r.stdout).To(ContainSubstring("kubectl annotate ccst " + prod + " cipherscale.com/allow-removals=3 --overwrite"))
		Expect(r.stdout).To(MatchRegexp(`\n    \w+ RemovalBudgetExceeded: 3\n      csu status-team/leaver-\d\n`))
		Expect(r.stdout).To(ContainSubstring("Needs a person:\n  ClusterCipherscaleTenant/" + prod + ": "))
		Expect(r.stdout).To(ContainSubstring("3 removals waiting, 3 objects not Ready\n"))

		By("running the command status printed, the removals go through and status exits 0")
		kubectl("annotate", "ccst", prod, "cipherscale.com/allow-removals=3", "--overwrite")
		Eventually(func() []cipherscale.User { return sim.Users() }, time.Minute, 200*time.Millisecond).Should(BeEmpty())
		Eventually(func() int { return status("--tenant", "ClusterCipherscaleTenant/"+prod).code }, 30*time.Second, time.Second).Should(Equal(0))
	})

	It("exits 2 when the API refuses the tenant's key, and says why", func() {
		Eventually(tenantReady(refused), time.Minute, 200*time.Millisecond).Should(Equal(metav1.ConditionFalse))
		r := status("--tenant", "ClusterCipherscaleTenant/"+refused)
		Expect(r.code).To(Equal(2), r.stdout+r.stderr)
		Expect(r.stdout).To(HavePrefix("ClusterCipherscaleTenant/" + refused + ": not Ready ("))
		Expect(r.stdout).To(ContainSubstring("Unauthorized"))
		Expect(r.stdout).To(ContainSubstring("Needs a person:\n  ClusterCipherscaleTenant/" + refused + ": tenant "))

		all := status()
		Expect(all.code).To(Equal(2), "one tenant needs a person: the whole cluster does")
		Expect(all.stdout).To(ContainSubstring("ClusterCipherscaleTenant/" + prod + ": Ready\n"))
	})

	It("exits 1 on an error", func() {
		r := status("--tenant", "ClusterCipherscaleTenant/no-such-tenant")
		Expect(r.code).To(Equal(1), r.stdout+r.stderr)
		Expect(r.stderr).To(ContainSubstring("no tenant object ClusterCipherscaleTenant/no-such-tenant"))
		r = run([]string{"KUBECONFIG=/nonexistent"}, "status")
		Expect(r.code).To(Equal(1), r.stdout+r.stderr)
		Expect(strings.TrimSpace(r.stdout)).To(BeEmpty())
	})
})
