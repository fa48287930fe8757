// Package reliability checks how the built manager binary behaves when things go wrong: API
// faults, crashes, an API outage, a lost leader, malformed answers. The manager runs as a process
// (as in test/e2e) with the RBAC a Deployment gives it, against a real kube-apiserver and the
// simulator, which runs in the test process so that its state, statistics and faults can be read
// and set directly. Every figure a test measures is printed (GinkgoWriter and a report entry):
// run with -v (or -ginkgo.v) to see them.
package reliability

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const (
	apiKey       = "reliability-secret-api-key-7d2e"
	operatorUser = "system:serviceaccount:cipherscale-system:cipherscale-operator"
)

var (
	ctx    context.Context
	cancel context.CancelFunc
	root   string
	work   string
	// managerBin is the manager binary, built as make build does.
	managerBin string
	cp         *devenv.ControlPlane
	k8s        client.Client
	// operatorKubeconfig is the manager's identity: the generated ClusterRole, nothing more.
	operatorKubeconfig string
	suiteStart         time.Time
)

func TestReliability(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Reliability Suite")
}

var _ = BeforeSuite(func() {
	suiteStart = time.Now()
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	root, err = devenv.Root()
	Expect(err).NotTo(HaveOccurred())
	work = GinkgoT().TempDir()

	By("building the manager as make build does")
	managerBin = filepath.Join(work, "manager")
	cmd := exec.Command("go", "build", "-trimpath", "-o", managerBin, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))

	By("starting kube-apiserver and etcd")
	cp, err = devenv.StartControlPlane(root, filepath.Join(work, "admin.kubeconfig"))
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(iamv1alpha1.AddToScheme(scheme)).To(Succeed())
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS = -1 // no client-side throttling: the tests create hundreds of objects
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("giving the operator's identity the generated ClusterRole")
	var role rbacv1.ClusterRole
	readYAML(filepath.Join(root, "config", "rbac", "role.yaml"), &role)
	Expect(k8s.Create(ctx, &role)).To(Succeed())
	Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cipherscale-operator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operatorUser}},
	})).To(Succeed())
	operatorKubeconfig = filepath.Join(work, "operator.kubeconfig")
	Expect(cp.WriteKubeconfig(operatorKubeconfig, operatorUser, nil)).To(Succeed())
})

var _ = AfterSuite(func() {
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
	if cancel != nil {
		cancel()
	}
	if !suiteStart.IsZero() {
		figure("suite", "run time (build, control plane and every test)", time.Since(suiteStart).Round(time.Second).String())
	}
})

// leaseNamespace creates a namespace for the leader election lease with the leader election
// Role of config/rbac bound to the operator. Each test has its own, so that a lease left by a
// killed manager never delays the next test.
func leaseNamespace(name string) string {
	GinkgoHelper()
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	var le rbacv1.Role
	readYAML(filepath.Join(root, "config", "rbac", "leader_election_role.yaml"), &le)
	le.Namespace = name
	Expect(k8s.Create(ctx, &le)).To(Succeed())
	Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cipherscale-operator-leader-election", Namespace: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: le.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operatorUser}},
	})).To(Succeed())
	return name
}

func readYAML(path string, into any) {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	Expect(yaml.Unmarshal(b, into)).To(Succeed())
}
