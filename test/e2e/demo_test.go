package e2e

import (
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("make demo", func() {
	It("brings config/samples to Ready on its own control plane and simulator, then exits with DEMO_EXIT=1", func() {
		cmd := exec.CommandContext(ctx, "go", "run", "./hack/demo", "--bin-dir", work, "--work-dir", filepath.Join(work, "demo"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "DEMO_EXIT=1")
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("Demo check passed: every object is Ready and the tenant matches."))
		Expect(string(out)).To(MatchRegexp(`jane.smith@example.com\s+pending\s+Jane Smith\s+Admin,Auditor\s+Engineering,Contractors\s+1`))
		Expect(string(out)).To(ContainSubstring("Stopping the manager, the simulator, kube-apiserver and etcd"))
	})
})
