package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// One file at a time: `kubectl apply -f people/`, one kubectl per file, or a GitOps sync wave
// applies objects one after another, never all at once. Their creates must still share requests:
// the batch stays open while creates keep coming. And a lone apply on an idle operator must not
// wait for a stream that is not there.
var _ = Describe("objects applied one file at a time", func() {
	It("creates 200 users applied by one kubectl per file in at most 4 create calls, and sends a lone apply on an idle operator alone", func() {
		const (
			test  = "one file at a time"
			n     = 200
			idle  = 5
			quiet = 3 * time.Second // well past the 1 s that makes creates a stream
		)
		sim := startSim()
		group := sim.group("people")
		ns := newNamespace("one-at-a-time")
		startManager(managerConfig{name: "manager", apiURL: sim.URL, namespaces: []string{ns}})
		namespacedTenant(ns, "people", sim.URL, 20)

		// file writes the YAML of one user of the tenant with its group, as a person keeps it.
		dir := GinkgoT().TempDir()
		run := next()
		var declared []userSpec
		file := func(name string) string {
			u := userSpec{Namespace: ns, Name: name, Email: fmt.Sprintf("%s-%d@example.com", name, run), Groups: []string{group}}
			declared = append(declared, u)
			path := filepath.Join(dir, name+".yaml")
			Expect(os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: iam.cipherscale.com/v1alpha1
kind: CipherscaleUser
metadata:
  name: %s
  namespace: %s
spec:
  email: %s
  groups: [%q]
  tenantRef:
    kind: CipherscaleTenant
    name: people
`, u.Name, ns, u.Email, group)), 0o600)).To(Succeed())
			return path
		}
		apply := func(path string) {
			GinkgoHelper()
			out, err := devenv.Kubectl(ctx, root, cp.Kubeconfig, "apply", "-f", path)
			Expect(err).NotTo(HaveOccurred(), out)
		}
		creates := func() int { return sim.Stats().Count(cipherscale.RouteCreateUsers) }

		By("200 files applied one after another, one kubectl each")
		paths := make([]string, n)
		for i := range n {
			paths[i] = file(fmt.Sprintf("person-%03d", i))
		}
		start := time.Now()
		for _, p := range paths {
			apply(p)
		}
		applied := time.Since(start)
		readyAt := waitAllReady(3*time.Minute, n, ns)
		figure(test, "kubectl pace (one process per file)", (applied / n).Round(time.Millisecond).String())
		figure(test, fmt.Sprintf("%d users applied one at a time: create calls", n), fmt.Sprint(creates()))
		figure(test, fmt.Sprintf("%d users: last Ready after the last apply", n), readyAt.Sub(start.Add(applied)).Round(time.Millisecond).String())
		// Each create alone took 34 requests before creates batched at the pace they arrive.
		Expect(creates()).To(BeNumerically("<=", 4), "the creates of objects applied one at a time did not share requests")

		By("a lone apply on an idle operator, five times")
		var latencies []time.Duration
		for i := range idle {
			time.Sleep(quiet)
			before := creates()
			p := file(fmt.Sprintf("lone-%d", i))
			at := time.Now()
			apply(p)
			readyAt := waitAllReady(time.Minute, n+i+1, ns)
			latencies = append(latencies, readyAt.Sub(at))
			// Sent alone, as soon as the object came: nothing else was coming.
			Expect(creates()).To(Equal(before+1), "a lone create")
		}
		slices.Sort(latencies)
		figure(test, "a lone apply on an idle operator, kubectl apply to Ready (median, max of 5)",
			fmt.Sprintf("%s, %s", latencies[idle/2].Round(time.Millisecond), latencies[idle-1].Round(time.Millisecond)))
		expectTenant(sim, declared, nil)
	})
})
