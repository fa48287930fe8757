package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const (
	operatorNS   = "cipherscale-system"
	operatorUser = "system:serviceaccount:cipherscale-system:cipherscale-operator"
	engineering  = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	adminRole    = "11111111-1111-4111-8111-111111111111"
	auditorRole  = "33333333-3333-4333-8333-333333333333"
	billingRole  = "44444444-4444-4444-8444-444444444444"
)

// grantOperatorRBAC gives the operator's identity exactly the generated ClusterRole (the chart's
// rules are tested equal to it) and the leader election Role, and returns its kubeconfig.
func grantOperatorRBAC() string {
	GinkgoHelper()
	path := filepath.Join(work, "operator.kubeconfig")
	Expect(cp.GrantOperator(ctx, root, operatorUser, path)).To(Succeed())
	Expect(cp.GrantLeaderElection(ctx, root, operatorNS, operatorUser)).To(Succeed())
	return path
}

func tenantUser(email string) (cipherscale.User, int) {
	GinkgoHelper()
	recs, err := control.Users(ctx)
	Expect(err).NotTo(HaveOccurred())
	for _, r := range recs {
		if cipherscale.NormalizeEmail(r.User.Email) == email {
			return r.User, r.InvitationsSent
		}
	}
	return cipherscale.User{}, 0
}

var _ = Describe("the manager binary", Ordered, func() {
	var mgr *devenv.Process
	var probePort, metricsPort int

	BeforeAll(func() {
		kubeconfig := grantOperatorRBAC()
		_, err := control.AddUser(ctx, simulator.UserSeed{Email: "contractor@example.com", Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		// The default tenant's Secret, as the sample's comment says to create it, consenting to
		// ClusterCipherscaleTenant/default.
		Expect(k8s.Create(ctx, devenv.TenantSecret(types.NamespacedName{Namespace: operatorNS, Name: "cipherscale-api-key"},
			apiKey, "ClusterCipherscaleTenant/default"))).To(Succeed())

		probePort, err = devenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		metricsPort, err = devenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		mgr, err = devenv.Start("manager", filepath.Join(work, "manager.log"),
			[]string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=" + operatorNS},
			bins["manager"],
			devenv.ManagerURLArgs[0], devenv.ManagerURLArgs[1],
			"--leader-elect", "--leader-election-namespace", operatorNS,
			"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probePort),
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { mgr.Stop(10 * time.Second) })
	})

	It("serves health checks, and metrics only to authorized callers", func() {
		Eventually(func() (int, error) {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort))
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the manager's self-signed certificate
		Eventually(func() (int, error) {
			resp, err := insecure.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort))
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusUnauthorized))
	})

	It("brings the tenant to config/samples, ClusterCipherscaleTenant/default included", func() {
		kubectl("apply", "-k", filepath.Join(root, "config", "samples"))
		// The sample's tenant, pointed at the simulator and read every 3s, so that drift is seen
		// within the specs' waits.
		kubectl("patch", "clustercipherscaletenant", "default", "--type=merge", "-p",
			`{"spec":{"url":"`+sim.URL+`","resyncInterval":"3s"}}`)
		kubectl("wait", "--for=condition=Ready", "clustercipherscaletenant/default", "--timeout=60s")
		kubectl("wait", "--for=condition=Ready", "cipherscaleusers", "--all", "--timeout=120s")
		kubectl("wait", "--for=condition=Ready", "cipherscalegroupmemberships", "--all", "--timeout=120s")

		jane, invites := tenantUser("jane.smith@example.com")
		Expect(jane.ID).NotTo(BeEmpty())
		Expect(invites).To(Equal(1))
		Expect(jane.FirstName + " " + jane.LastName).To(Equal("Jane Smith"))
		Expect(jane.RoleIDs()).To(ConsistOf(adminRole, auditorRole))
		Expect(jane.GroupIDs()).To(ConsistOf(engineering, "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"))
		contractor, _ := tenantUser("contractor@example.com")
		Expect(contractor.GroupIDs()).To(ConsistOf("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"))
		alex, _ := tenantUser("alex.kim@example.com")
		Expect(alex.GroupIDs()).To(ConsistOf("cccccccc-cccc-4ccc-8ccc-cccccccccccc"), "groups: [] plus the Support membership")
		out := kubectl("get", "csu", "jane-smith", "-o", "jsonpath={.status.id} {.status.state}")
		Expect(out).To(Equal(jane.ID + " Pending"))
		Expect(kubectl("get", "csgm", "contractors", "-o", "jsonpath={.status.memberCount}")).To(Equal("2"))
		By("the default tenant's status counts its users, like any tenant's")
		Eventually(func() string {
			return kubectl("get", "ccst", "default", "-o", "jsonpath={.status.declared}")
		}, 30*time.Second, 500*time.Millisecond).Should(Equal("5"), "the 4 CipherscaleUsers and the membership's email member")
		Expect(kubectl("get", "ccst", "default", "-o", "jsonpath={.status.undeclared.count}")).NotTo(BeEmpty(), "the sample reports undeclared users")
	})

	It("follows an edit made with kubectl", func() {
		kubectl("patch", "csu", "jane-smith", "--type=merge", "-p",
			`{"spec":{"roles":["`+billingRole+`"],"lastName":"Smith-Jones"}}`)
		Eventually(func(g Gomega) {
			jane, _ := tenantUser("jane.smith@example.com")
			g.Expect(jane.RoleIDs()).To(ConsistOf(billingRole))
			g.Expect(jane.LastName).To(Equal("Smith-Jones"))
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		kubectl("wait", "--for=condition=Ready", "csu/jane-smith", "--timeout=30s")
	})

	It("corrects drift made in the tenant", func() {
		jane, _ := tenantUser("jane.smith@example.com")
		byHand, err := cipherscale.New(cipherscale.Config{BaseURL: sim.URL, Key: cipherscale.StaticKey(apiKey)})
		Expect(err).NotTo(HaveOccurred())
		Expect(byHand.RemoveFromGroup(ctx, jane.ID, engineering)).To(Succeed())
		Eventually(func() []string {
			u, _ := tenantUser("jane.smith@example.com")
			return u.GroupIDs()
		}, 30*time.Second, 200*time.Millisecond).Should(ContainElement(engineering))
		Eventually(func() string {
			return kubectl("get", "events", "--field-selector", "reason="+iamv1alpha1.EventDriftCorrected, "-o", "name")
		}, 30*time.Second).ShouldNot(BeEmpty())
	})

	It("deletes the tenant user when the object is deleted", func() {
		alex, _ := tenantUser("alex.kim@example.com")
		Expect(alex.ID).NotTo(BeEmpty())
		kubectl("delete", "csu", "alex-kim", "--timeout=60s")
		u, _ := tenantUser("alex.kim@example.com")
		Expect(u.ID).To(BeEmpty())
		var list iamv1alpha1.CipherscaleUserList
		Expect(k8s.List(ctx, &list, client.InNamespace("default"))).To(Succeed())
		Expect(list.Items).To(HaveLen(3))
	})

	It("never logs the API key or a user's email at the default level", func() {
		log := mgr.Log()
		Expect(log).To(ContainSubstring("Starting the manager"))
		Expect(log).NotTo(ContainSubstring(apiKey))
		for _, email := range []string{"jane.smith@example.com", "alex.kim@example.com", "sam.lee@example.com",
			"billing.lead@example.com", "contractor@example.com"} {
			Expect(strings.ToLower(log)).NotTo(ContainSubstring(email))
		}
	})
})

var _ = Describe("the manager binary's start-up checks", func() {
	DescribeTable("refuses to start with a clear message",
		func(want string, args ...string) {
			p, err := devenv.Start("manager", filepath.Join(work, "refused.log"),
				[]string{"KUBECONFIG=" + cp.Kubeconfig}, bins["manager"], args...)
			Expect(err).NotTo(HaveOccurred())
			Eventually(p.Done(), 30*time.Second).Should(BeClosed())
			Expect(p.Cmd.ProcessState.ExitCode()).NotTo(BeZero())
			Expect(p.Log()).To(ContainSubstring(want))
		},
		Entry("a tenant concern given as a flag: it is the tenant object's", "flag provided but not defined: -api-url", "--api-url", "https://api.example.com"),
		Entry("no workers", "--max-concurrent-reconciles", "--max-concurrent-reconciles", "0"),
		Entry("a negative memory limit", "--soft-memory-limit-mib", "--soft-memory-limit-mib", "-1"),
		Entry("a URL, not a host, in --api-hosts", "--api-hosts", "--api-hosts", "https://api.example.com"),
	)
})
