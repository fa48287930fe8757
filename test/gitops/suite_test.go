package gitops_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
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
	ctx    context.Context
	cancel context.CancelFunc
	cp     *devenv.ControlPlane
	k8s    client.Client
	sim    *simulator.Server
)

func TestGitOps(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "GitOps health suite")
}

// The operator runs in this process as main.go wires it, against a local kube-apiserver and
// the simulator, as in internal/controller's suite.
var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	root, err := devenv.Root()
	Expect(err).NotTo(HaveOccurred())
	cp, err = devenv.StartControlPlane(root, filepath.Join(GinkgoT().TempDir(), "kubeconfig"))
	Expect(err).NotTo(HaveOccurred(), "run `make envtest-assets` or set KUBEBUILDER_ASSETS")
	k8s = cp.Client
	op, err := devenv.RunOperator(ctx, cp, apiKey, resync, 4)
	Expect(err).NotTo(HaveOccurred())
	sim = op.Sim
	go func() {
		defer GinkgoRecover()
		Expect(<-op.Errors).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
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
	case *iamv1alpha1.CipherscaleTenant:
		return o.Status.Conditions
	case *iamv1alpha1.ClusterCipherscaleTenant:
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
