// Package onboarding checks the kubectl-cipherscale plugin as a user runs it: the built plugin
// exports a simulator tenant of 1,000 users, kubectl applies the folder to a real kube-apiserver
// where the built manager runs, and the plugin plans against the same tenant. The tenant is
// seeded and read only through the simulator's /_sim/ endpoints. Figures are printed at the end
// (go test -v).
package onboarding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const (
	apiKey       = "onboarding-secret-api-key-3b9f"
	operatorUser = "system:serviceaccount:cipherscale-system:cipherscale-operator"
)

var (
	ctx     context.Context
	cancel  context.CancelFunc
	root    string
	work    string
	bins    map[string]string
	plugin  string
	cp      *devenv.ControlPlane
	k8s     client.Client
	sim     *devenv.Simulator
	control *devenv.SimControl

	figuresMu sync.Mutex
	figures   []string
)

func TestOnboarding(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Onboarding Suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	root, err = devenv.Root()
	Expect(err).NotTo(HaveOccurred())
	work = GinkgoT().TempDir()

	By("building the manager, the simulator and the plugin as make build does")
	bins, err = devenv.BuildBinaries(root, work, "manager", "cipherscale-sim", "kubectl-cipherscale")
	Expect(err).NotTo(HaveOccurred())
	plugin = bins["kubectl-cipherscale"]

	By("starting kube-apiserver and etcd")
	cp, err = devenv.StartControlPlane(root, filepath.Join(work, "admin.kubeconfig"))
	Expect(err).NotTo(HaveOccurred())
	k8s = cp.Client

	By("starting the simulator, with no request limit")
	sim, err = devenv.StartSimulator(bins["cipherscale-sim"], filepath.Join(work, "sim.log"), apiKey)
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
	if cancel != nil {
		cancel()
	}
})

// figure prints a measured figure and keeps it for the summary printed at the end.
func figure(name, value string) {
	line := fmt.Sprintf("%s: %s", name, value)
	GinkgoWriter.Println(line)
	AddReportEntry(name, value)
	figuresMu.Lock()
	figures = append(figures, line)
	figuresMu.Unlock()
}

var _ = ReportAfterSuite("figures", func(Report) {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	if len(figures) == 0 {
		return
	}
	fmt.Println("\n==== onboarding figures ====")
	for _, l := range figures {
		fmt.Println(l)
	}
})

// result is one run of the plugin.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the built plugin with the environment given (and nothing of the test's own, but PATH
// and HOME). Whatever it prints, on success or error, must not hold the API key.
func run(env []string, args ...string) result {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, plugin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "running the plugin: %v", err)
		code = ee.ExitCode()
	}
	Expect(stdout.String()+stderr.String()).NotTo(ContainSubstring(apiKey), "the plugin printed the API key")
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func kubectl(args ...string) string {
	GinkgoHelper()
	out, err := devenv.Kubectl(ctx, root, cp.Kubeconfig, args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}
