package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
	"github.com/cipherscale/cipherscale-operator/internal/monitoring"
)

// scrape reads a Prometheus text exposition: for each metric name (histograms' _bucket, _sum
// and _count included, as they are exposed), the set of label names its series carry.
func scrape(url string) (map[string]map[string]bool, error) {
	resp, err := http.Get(url) //nolint:gosec // the test's own manager on loopback
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	out := map[string]map[string]bool{}
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name = strings.Fields(name)[0]
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if labels, _, ok := strings.Cut(rest, "}"); ok {
			for _, m := range label.FindAllStringSubmatch(labels, -1) {
				out[name][m[1]] = true
			}
		}
	}
	return out, sc.Err()
}

// The rules and the dashboard must only use what the manager exports: every metric name they
// name, with every label they select or group on, is read from a running manager's /metrics,
// after it has done what brings each series into being (calls, a 429, a removal, undeclared
// users under Report, a Stalled object, a tenant object with a removal budget).
var _ = Describe("the metrics the alert rules and the dashboard use", Ordered, func() {
	const (
		ns     = "metrics-team"
		tenant = "metrics"
	)
	var metricsPort int
	var tenantSim *simulator.Server
	var simControl *devenv.SimControl

	BeforeAll(func() {
		kubeconfig := grantOperatorRBAC()
		tenantSim = simulator.New(apiKey)
		url, stop, err := tenantSim.Start("127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(stop)
		simControl = devenv.NewSimControl(url)
		_, err = tenantSim.AddUser(simulator.UserSeed{Email: "nobody-declared@example.com", Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())

		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: "metrics-tenant-key",
				Annotations: map[string]string{"cipherscale.com/allowed-tenants": "ClusterCipherscaleTenant/" + tenant}},
			Data: map[string][]byte{"api-key": []byte(apiKey)},
		}))).To(Succeed())
		perHour := int32(1)
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &iamv1alpha1.ClusterCipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Name: tenant},
			Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
				APIKeySecretRef:   iamv1alpha1.NamespacedSecretKeyReference{Namespace: operatorNS, Name: "metrics-tenant-key", Key: "api-key"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
				TenantSettings: iamv1alpha1.TenantSettings{
					URL:             url,
					ResyncInterval:  &metav1.Duration{Duration: 3 * time.Second},
					RemovalBudget:   &iamv1alpha1.RemovalBudgetSpec{PerHour: &perHour},
					UndeclaredUsers: &iamv1alpha1.UndeclaredUsersSpec{Policy: iamv1alpha1.UndeclaredUsersReport},
				},
			},
		}))).To(Succeed())

		probePort, err := devenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		metricsPort, err = devenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		mgr, err := devenv.Start("manager", filepath.Join(work, "manager-metrics.log"),
			[]string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=" + operatorNS},
			bins["manager"],
			// The tenant's simulator serves plain http on loopback.
			devenv.ManagerURLArgs[0], devenv.ManagerURLArgs[1],
			"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probePort),
			// Plain HTTP on loopback, so that the test reads it as Prometheus would once
			// authorized (the authorization is the e2e spec "metrics only to authorized callers").
			"--metrics-secure=false",
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { mgr.Stop(10 * time.Second) })
	})

	It("are all on the manager's /metrics", func() {
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: tenant}
		By("declaring two users, one of them then deleted, the other kept; and one naming a missing role (Stalled)")
		for _, name := range []string{"kept", "leaver", "stalled"} {
			u := &iamv1alpha1.CipherscaleUser{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec:       iamv1alpha1.CipherscaleUserSpec{Email: name + "@example.com", TenantRef: ref, DeletionPolicy: iamv1alpha1.DeletionPolicyDelete},
			}
			if name == "stalled" {
				roles := []iamv1alpha1.ID{"99999999-9999-4999-8999-999999999999"}
				u.Spec.Roles = &roles
			}
			Expect(k8s.Create(ctx, u)).To(Succeed())
		}
		kubectl("wait", "--for=condition=Ready", "-n", ns, "csu/kept", "csu/leaver", "--timeout=90s")

		By("throttling the tenant's API for a moment (429s)")
		Expect(simControl.SetFaults(ctx, []simulator.FaultRule{{Status: http.StatusTooManyRequests, RetryAfterSeconds: 1}})).To(Succeed())
		time.Sleep(4 * time.Second)
		Expect(simControl.SetFaults(ctx, nil)).To(Succeed())

		By("deleting two users with a budget of one removal an hour: one waits")
		Expect(k8s.Delete(ctx, &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "leaver"}})).To(Succeed())
		Expect(k8s.Delete(ctx, &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kept"}})).To(Succeed())

		files := filepath.Join(root, "charts", "cipherscale-operator", "files")
		rules, err := monitoring.RuleExprs(filepath.Join(files, "alerts.yaml"))
		Expect(err).NotTo(HaveOccurred())
		dash, err := monitoring.DashboardExprs(filepath.Join(files, "dashboard.json"))
		Expect(err).NotTo(HaveOccurred())
		exprs := append(rules, dash...)

		url := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
		var missing []string
		Eventually(func(g Gomega) {
			exposed, err := scrape(url)
			g.Expect(err).NotTo(HaveOccurred())
			missing = missing[:0]
			for _, e := range exprs {
				use, err := monitoring.Uses(e.PromQL)
				g.Expect(err).NotTo(HaveOccurred(), e.Source)
				labels := map[string]bool{}
				for _, m := range use.Metrics {
					if exposed[m] == nil {
						missing = append(missing, fmt.Sprintf("%s: metric %s", e.Source, m))
					}
					for l := range exposed[m] {
						labels[l] = true
					}
				}
				for _, l := range use.Labels {
					if !labels[l] {
						missing = append(missing, fmt.Sprintf("%s: label %s on none of %v", e.Source, l, use.Metrics))
					}
				}
			}
			sort.Strings(missing)
			g.Expect(missing).To(BeEmpty())
		}, 2*time.Minute, 2*time.Second).Should(Succeed())
		GinkgoWriter.Printf("%d expressions (%d rules, %d dashboard queries) checked against %s\n", len(exprs), len(rules), len(dash), url)
	})
})
