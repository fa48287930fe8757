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
		// The demo compares the tenant (GET /_sim/users) with the applied samples before it says
		// they match: the four CipherscaleUsers and two memberships of config/samples, and no
		// difference found.
		Expect(string(out)).To(ContainSubstring("checked 4 CipherscaleUsers and 2 CipherscaleGroupMemberships against the tenant: 0 differences"))
		Expect(string(out)).To(ContainSubstring("Demo check passed"))
		Expect(string(out)).To(MatchRegexp(`jane.smith@example.com\s+pending\s+Jane Smith\s+Admin,Auditor\s+Engineering,Contractors\s+1`))
		Expect(string(out)).To(ContainSubstring("Stopping the manager, the simulator, kube-apiserver and etcd"))
	})
})
