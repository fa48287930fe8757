package e2e

import (
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("make demo", func() {
	It("brings config/samples and a second tenant to Ready on its own control plane and simulators, then exits with DEMO_EXIT=1", func() {
		cmd := exec.CommandContext(ctx, "go", "run", "./hack/demo", "--bin-dir", work, "--work-dir", filepath.Join(work, "demo"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "DEMO_EXIT=1")
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		// The demo compares the tenant (GET /_sim/users) with the applied samples before it says
		// they match: the four CipherscaleUsers and two memberships of config/samples, and no
		// difference found.
		Expect(string(out)).To(ContainSubstring("default tenant: checked 4 CipherscaleUsers and 2 CipherscaleGroupMemberships against the tenant: 0 differences"))
		// The second tenant, qa (a CipherscaleTenant of team-qa on its own simulator): the user
		// of the tenants sample, jane.smith@example.com again, and two more.
		Expect(string(out)).To(ContainSubstring("qa tenant: checked 3 CipherscaleUsers and 0 CipherscaleGroupMemberships against the tenant: 0 differences"))
		Expect(string(out)).To(ContainSubstring("Demo check passed"))
		Expect(string(out)).To(MatchRegexp(`jane.smith@example.com\s+pending\s+Jane Smith\s+Admin,Auditor\s+Engineering,Contractors\s+1`))
		Expect(string(out)).To(ContainSubstring("Stopping the manager, the simulator, kube-apiserver and etcd"))
	})
})
