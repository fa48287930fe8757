// Package reliability checks how the built manager binary behaves when things go wrong: API
// faults, crashes, an API outage, a lost leader, malformed answers. The manager runs as a process
// (as in test/e2e) with the RBAC a Deployment gives it, against a real kube-apiserver and the
// simulator, which runs in the test process so that its state, statistics and faults can be read
// and set directly. Every figure a test measures is printed (GinkgoWriter and a report entry):
// run with -v (or -ginkgo.v) to see them.
package reliability

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	bins, err := devenv.BuildBinaries(root, work)
	Expect(err).NotTo(HaveOccurred())
	managerBin = bins["manager"]

	By("starting kube-apiserver and etcd")
	cp, err = devenv.StartControlPlane(root, filepath.Join(work, "admin.kubeconfig"))
	Expect(err).NotTo(HaveOccurred())
	k8s = cp.Client // no client-side throttling: the tests create hundreds of objects

	By("giving the operator's identity the generated ClusterRole")
	operatorKubeconfig = filepath.Join(work, "operator.kubeconfig")
	Expect(cp.GrantOperator(ctx, root, operatorUser, operatorKubeconfig)).To(Succeed())
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
	Expect(cp.GrantLeaderElection(ctx, root, name, operatorUser)).To(Succeed())
	return name
}
