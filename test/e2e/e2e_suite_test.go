// Package e2e runs the built manager binary as a user would: a process with the flags, the
// mounted API key file and the RBAC a Deployment gives it, against a real kube-apiserver and the
// simulator process, driven with kubectl.
package e2e

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

const apiKey = "e2e-secret-api-key-5f1c"

var (
	ctx     context.Context
	cancel  context.CancelFunc
	root    string
	work    string
	bins    map[string]string
	cp      *devenv.ControlPlane
	k8s     client.Client
	sim     *devenv.Simulator
	control *devenv.SimControl
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end Suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	root, err = devenv.Root()
	Expect(err).NotTo(HaveOccurred())
	work = GinkgoT().TempDir()

	By("building the manager and the simulator as make build does")
	bins, err = devenv.BuildBinaries(root, work)
	Expect(err).NotTo(HaveOccurred())

	By("starting kube-apiserver and etcd")
	cp, err = devenv.StartControlPlane(root, filepath.Join(work, "admin.kubeconfig"))
	Expect(err).NotTo(HaveOccurred())
	k8s = cp.Client

	By("starting the simulator with the demo seed")
	sim, err = devenv.StartSimulator(bins["cipherscale-sim"], filepath.Join(work, "sim.log"), apiKey, "--demo-seed")
	Expect(err).NotTo(HaveOccurred())
	control = devenv.NewSimControl(sim.URL)
})

var _ = AfterSuite(func() {
	if sim != nil {
		sim.Stop(5 * time.Second)
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
	cancel()
})

func kubectl(args ...string) string {
	GinkgoHelper()
	out, err := devenv.Kubectl(ctx, root, cp.Kubeconfig, args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}
