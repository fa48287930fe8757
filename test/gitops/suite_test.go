package gitops_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/controller"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

const (
	apiKey = "test-api-key-0123456789"
	// resync is short so that a cleared fault is seen within seconds.
	resync = 2 * time.Second
)

// Paths, relative to this package's directory (where go test runs).
var (
	repoRoot  = filepath.Join("..", "..")
	gitopsDir = filepath.Join(repoRoot, "docs", "gitops")
	luaScript = filepath.Join(gitopsDir, "argocd-health.lua")
)

var (
	ctx     context.Context
	cancel  context.CancelFunc
	testEnv *envtest.Environment
	k8s     client.Client
	sim     *simulator.Server
)

func TestGitOps(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "GitOps health suite")
}

func assetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(repoRoot, "bin", "k8s")
}

// The set-up is that of internal/controller/suite_test.go: envtest, the simulator over
// httptest, and a manager running both reconcilers as main.go wires them.
var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())

	_, err := os.Stat(filepath.Join(assetsDir(), "kube-apiserver"))
	Expect(err).NotTo(HaveOccurred(),
		"no kube-apiserver in %s: run `make envtest-assets` or set KUBEBUILDER_ASSETS", assetsDir())
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assetsDir(),
		// A cold start on a busy two-core machine can take longer than the default 20s.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(iamv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	sim = simulator.New(apiKey)
	srv := httptest.NewServer(sim)
	DeferCleanup(srv.Close)

	api, err := cipherscale.New(cipherscale.Config{
		BaseURL: srv.URL, Key: cipherscale.StaticKey(apiKey), QPS: 500, Burst: 100,
		MaxRetries: 3, RetryBudget: 5 * time.Second,
	})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.Setup(ctx, mgr, controller.Options{
		Tenant:         tenant.New(api, tenant.Options{MaxAge: resync, BatchWindow: 10 * time.Millisecond}),
		ResyncInterval: resync, DefaultDeletionPolicy: iamv1alpha1.DeletionPolicyDelete, MaxConcurrentReconciles: 4,
	})).To(Succeed())

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// ---- helpers ----

var counter int

func uniq(prefix string) string {
	counter++
	return fmt.Sprintf("%s-%d-%d", prefix, counter, time.Now().UnixNano()%1000000)
}

func email(prefix string) string { return uniq(prefix) + "@example.com" }

// newNamespace creates a namespace for one test and deletes its objects afterwards, waiting
// until the operator has released them.
func newNamespace() string {
	GinkgoHelper()
	name := uniq("gitops")
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	DeferCleanup(func() {
		sim.ClearFaults()
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleGroupMembership{}, client.InNamespace(name))).To(Succeed())
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(name))).To(Succeed())
		Eventually(func(g Gomega) {
			var us iamv1alpha1.CipherscaleUserList
			g.Expect(k8s.List(ctx, &us, client.InNamespace(name))).To(Succeed())
			g.Expect(us.Items).To(BeEmpty())
			var ms iamv1alpha1.CipherscaleGroupMembershipList
			g.Expect(k8s.List(ctx, &ms, client.InNamespace(name))).To(Succeed())
			g.Expect(ms.Items).To(BeEmpty())
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	})
	return name
}

func seedRole(name string) string {
	GinkgoHelper()
	r, err := sim.AddRole(simulator.RoleSeed{Name: uniq(name), Type: cipherscale.RoleTypeSupport})
	Expect(err).NotTo(HaveOccurred())
	return r.ID
}

func seedGroup(name string) string {
	GinkgoHelper()
	g, err := sim.AddGroup(simulator.GroupSeed{Name: uniq(name)})
	Expect(err).NotTo(HaveOccurred())
	return g.ID
}

func ptr[T any](v T) *T { return &v }

func ids(list ...string) *[]string { l := append([]string{}, list...); return &l }

func newUser(ns, name, mail string, mutate ...func(*iamv1alpha1.CipherscaleUser)) *iamv1alpha1.CipherscaleUser {
	GinkgoHelper()
	u := &iamv1alpha1.CipherscaleUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       iamv1alpha1.CipherscaleUserSpec{Email: mail},
	}
	for _, m := range mutate {
		m(u)
	}
	Expect(k8s.Create(ctx, u)).To(Succeed())
	return u
}

func newMembership(ns, name, group string, members ...iamv1alpha1.Member) *iamv1alpha1.CipherscaleGroupMembership {
	GinkgoHelper()
	m := &iamv1alpha1.CipherscaleGroupMembership{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, Members: members},
	}
	Expect(k8s.Create(ctx, m)).To(Succeed())
	return m
}

func ref(name string) iamv1alpha1.Member {
	return iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: name}}
}

func byEmail(mail string) iamv1alpha1.Member { return iamv1alpha1.Member{Email: mail} }

// conditions reads the object fresh and returns its conditions.
func conditions(obj client.Object) []metav1.Condition {
	GinkgoHelper()
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	switch o := obj.(type) {
	case *iamv1alpha1.CipherscaleUser:
		return o.Status.Conditions
	case *iamv1alpha1.CipherscaleGroupMembership:
		return o.Status.Conditions
	}
	Fail(fmt.Sprintf("unexpected type %T", obj))
	return nil
}

// eventuallyCondition waits until the object has the condition with the status and reason,
// observed for its current generation.
func eventuallyCondition(obj client.Object, typ string, status metav1.ConditionStatus, reason string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(conditions(obj), typ)
		g.Expect(c).NotTo(BeNil(), "no %s condition yet", typ)
		g.Expect(c.Status).To(Equal(status))
		g.Expect(c.Reason).To(Equal(reason))
		g.Expect(c.ObservedGeneration).To(Equal(obj.GetGeneration()))
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
}
