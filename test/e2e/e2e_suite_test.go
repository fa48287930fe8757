// Package e2e runs the built manager binary as a user would: a process with the flags, the
// mounted API key file and the RBAC a Deployment gives it, against a real kube-apiserver and the
// simulator process, driven with kubectl.
package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const apiKey = "e2e-secret-api-key-5f1c"

var (
	ctx     context.Context
	cancel  context.CancelFunc
	root    string
	work    string
	bins    = map[string]string{}
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
	for name, pkg := range map[string]string{"manager": ".", "cipherscale-sim": "./hack/cipherscale-sim"} {
		out := filepath.Join(work, name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		b, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(b))
		bins[name] = out
	}

	By("starting kube-apiserver and etcd")
	cp, err = devenv.StartControlPlane(root, filepath.Join(work, "admin.kubeconfig"))
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(iamv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cp.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

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
