package image_test

import (
	"bufio"
	"crypto/tls"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// The lease the manager elects its leader with (main.go's LeaderElectionID).
const leaseName = "cipherscale-operator.iam.cipherscale.com"

var _ = Describe("the image", func() {
	It("is what the chart and config/ reference: one name, tagged with the chart's appVersion", func() {
		var chart struct {
			AppVersion string `json:"appVersion"`
		}
		readYAML(filepath.Join(root, "charts", "cipherscale-operator", "Chart.yaml"), &chart)
		var values struct {
			Image struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"image"`
		}
		readYAML(filepath.Join(root, "charts", "cipherscale-operator", "values.yaml"), &values)
		Expect(values.Image.Tag).To(BeEmpty(), "the chart's default tag is its appVersion")
		ref := values.Image.Repository + ":" + chart.AppVersion

		By("the tarball names that reference")
		Expect(imageAnns).To(HaveKeyWithValue("org.opencontainers.image.ref.name", chart.AppVersion))
		Expect(imageAnns).To(HaveKeyWithValue("io.containerd.image.name", ref))
		Expect(imageConfig.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.version", chart.AppVersion))

		By("the chart's Deployment runs it")
		Expect(deployment.Spec.Template.Spec.Containers[0].Image).To(Equal(ref))

		By("config/manager runs it")
		var kustomization struct {
			Images []struct {
				Name    string `json:"name"`
				NewName string `json:"newName"`
				NewTag  string `json:"newTag"`
			} `json:"images"`
		}
		readYAML(filepath.Join(root, "config", "manager", "kustomization.yaml"), &kustomization)
		Expect(kustomization.Images).To(HaveLen(1))
		Expect(kustomization.Images[0].Name).To(Equal(values.Image.Repository))
		Expect(kustomization.Images[0].NewName).To(BeEmpty())
		Expect(kustomization.Images[0].NewTag).To(Equal(chart.AppVersion))
		manager, err := os.ReadFile(filepath.Join(root, "config", "manager", "manager.yaml"))
		Expect(err).NotTo(HaveOccurred())
		images := regexp.MustCompile(`(?m)^\s+image: (\S+)$`).FindAllStringSubmatch(string(manager), -1)
		Expect(images).To(HaveLen(1))
		Expect(images[0][1]).To(Equal(ref))
	})

	It("is the image the Dockerfile builds: user, entrypoint, working directory, labels, linker flags", func() {
		df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
		Expect(err).NotTo(HaveOccurred())
		text := strings.ReplaceAll(string(df), "\\\n", " ")
		instr := func(name string) []string {
			var out []string
			for _, line := range strings.Split(text, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
					out = append(out, strings.TrimSpace(v))
				}
			}
			return out
		}
		cfg := imageConfig.Config
		Expect(instr("USER")).To(Equal([]string{cfg.User}))
		Expect(cfg.User).To(Equal("65532:65532"))
		Expect(instr("ENTRYPOINT")).To(Equal([]string{`["` + strings.Join(cfg.Entrypoint, `", "`) + `"]`}))
		Expect(cfg.Entrypoint).To(Equal([]string{"/manager"}))
		Expect(cfg.Cmd).To(BeEmpty())
		Expect(instr("WORKDIR")).To(ContainElement(cfg.WorkingDir))
		labels := instr("LABEL")
		Expect(labels).To(HaveLen(1))
		var keys []string
		for _, m := range regexp.MustCompile(`([a-z.]+)=`).FindAllStringSubmatch(labels[0], -1) {
			keys = append(keys, m[1])
		}
		var want []string
		for k := range cfg.Labels {
			want = append(want, k)
		}
		Expect(keys).To(ConsistOf(want))
		for _, k := range []string{"source", "revision", "version", "created"} {
			Expect(cfg.Labels).To(HaveKey("org.opencontainers.image."+k), "label %s", k)
		}

		By("the Dockerfile, make build and hack/image link the manager with the same flags")
		mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(mk)).To(ContainSubstring(`GOBUILD_LDFLAGS := -s -w -X main.version=$(VERSION)`))
		Expect(text).To(ContainSubstring(`CGO_ENABLED=0`))
		Expect(text).To(ContainSubstring(`go build -trimpath -ldflags "-s -w -X main.version=${VERSION}"`))
		hack, err := os.ReadFile(filepath.Join(root, "hack", "image", "main.go"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(hack)).To(ContainSubstring(`"go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X main.version="+o.version`))
		Expect(string(hack)).To(ContainSubstring(`"CGO_ENABLED=0"`))
	})

	It("holds the manager, the nonroot user and the CA certificates, and no shell", func() {
		st, err := os.Stat(filepath.Join(rootfs, "manager"))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o755)))
		passwd, err := os.ReadFile(filepath.Join(rootfs, "etc", "passwd"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(passwd)).To(ContainSubstring("nonroot:x:65532:65532:"))
		group, err := os.ReadFile(filepath.Join(rootfs, "etc", "group"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(group)).To(ContainSubstring("nonroot:x:65532:"))
		ca, err := os.ReadFile(filepath.Join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(string(ca), "BEGIN CERTIFICATE")).To(BeNumerically(">", 10))
		for _, sh := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
			_, err := os.Lstat(filepath.Join(rootfs, sh))
			Expect(err).To(MatchError(os.ErrNotExist), "the image holds %s", sh)
		}
		By("the manager is a static executable: no interpreter, no shared libraries")
		bin, err := elf.Open(filepath.Join(rootfs, "manager"))
		Expect(err).NotTo(HaveOccurred())
		defer bin.Close()
		for _, prog := range bin.Progs {
			Expect(prog.Type).NotTo(Equal(elf.PT_INTERP))
			Expect(prog.Type).NotTo(Equal(elf.PT_DYNAMIC))
		}
	})
})

var _ = Describe("the chart's Deployment, run from the image", Ordered, func() {
	var (
		first, second *pod
		container     corev1.Container
		probePort     = func(p *corev1.Probe) int {
			GinkgoHelper()
			Expect(p).NotTo(BeNil())
			Expect(p.HTTPGet).NotTo(BeNil())
			return portOf(container, p.HTTPGet.Port)
		}
	)

	BeforeAll(func() {
		container = deployment.Spec.Template.Spec.Containers[0]
		By("starting the first replica")
		first = startPod("cso-manager-a")
	})

	It("runs as 65532:65532 without capabilities or new privileges, on a read-only root", func() {
		Eventually(func() string { return procStatus(first, "Uid") }).WithTimeout(30*time.Second).
			Should(Equal("65532\t65532\t65532\t65532"), "the container runs as 65532; log:\n%s", first.log())
		Expect(procStatus(first, "Gid")).To(Equal("65532\t65532\t65532\t65532"))
		Expect(procStatus(first, "Groups")).To(Equal("65532"))
		Expect(procStatus(first, "CapEff")).To(Equal("0000000000000000"))
		Expect(procStatus(first, "CapPrm")).To(Equal("0000000000000000"))
		Expect(procStatus(first, "NoNewPrivs")).To(Equal("1"))
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", first.pid()))
		Expect(err).NotTo(HaveOccurred())
		Expect(exe).To(HaveSuffix("/manager"))
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", first.pid()))
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")).
			To(Equal(append(append([]string{}, container.Command...), container.Args...)))

		By("its root and its volumes are mounted read-only")
		mounts := procMounts(first)
		Expect(mounts).To(HaveKeyWithValue("/", ContainElement("ro")))
		for _, m := range container.VolumeMounts {
			Expect(mounts).To(HaveKeyWithValue(m.MountPath, ContainElement("ro")))
		}
		Expect(mounts).To(HaveKeyWithValue("/var/run/secrets/kubernetes.io/serviceaccount", ContainElement("ro")))
	})

	It("answers the chart's liveness and readiness probes", func() {
		for _, probe := range []*corev1.Probe{container.LivenessProbe, container.ReadinessProbe} {
			url := fmt.Sprintf("http://127.0.0.1:%d%s", probePort(probe), probe.HTTPGet.Path)
			Eventually(func() (int, error) { return get(first, url, "") }).WithTimeout(60*time.Second).
				Should(Equal(http.StatusOK), "GET %s; log:\n%s", url, first.log())
			GinkgoWriter.Printf("probe %s: 200\n", url)
		}
	})

	It("becomes the leader, makes the chart's ClusterCipherscaleTenant/default Ready and brings config/samples' users and memberships to Ready", func() {
		Eventually(leaseHolder).WithTimeout(60*time.Second).Should(HavePrefix(first.name+"_"),
			"log:\n%s", first.log())
		out, err := devenv.Kubectl(ctx, root, cp.Kubeconfig, "wait", "--for=condition=Ready", "clustercipherscaletenant/default", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), "%s\nlog:\n%s", out, first.log())
		// The chart rendered the default tenant: the samples' own (pointing at the real API) is
		// left out.
		samples := filepath.Join(root, "config", "samples")
		out, err = devenv.Kubectl(ctx, root, cp.Kubeconfig, "apply",
			"-f", filepath.Join(samples, "iam_v1alpha1_cipherscaleuser.yaml"),
			"-f", filepath.Join(samples, "iam_v1alpha1_cipherscalegroupmembership.yaml"))
		Expect(err).NotTo(HaveOccurred(), out)
		for _, kind := range []string{"cipherscaleusers", "cipherscalegroupmemberships"} {
			out, err := devenv.Kubectl(ctx, root, cp.Kubeconfig, "wait", "--for=condition=Ready", kind, "--all", "--timeout=90s")
			if err != nil {
				state, _ := devenv.Kubectl(ctx, root, cp.Kubeconfig, "get", kind, "-o", "yaml")
				Fail(fmt.Sprintf("%s\n%s\nlog:\n%s", out, state, first.log()))
			}
		}
		By("the tenant holds every sample user, with the id the object reports")
		var users iamv1alpha1.CipherscaleUserList
		Expect(k8s.List(ctx, &users, client.InNamespace("default"))).To(Succeed())
		Expect(users.Items).NotTo(BeEmpty())
		tenant, err := simControl.Users(ctx)
		Expect(err).NotTo(HaveOccurred())
		ids := map[string]string{}
		for _, t := range tenant {
			ids[strings.ToLower(t.User.Email)] = t.User.ID
		}
		for _, u := range users.Items {
			Expect(u.Status.ID).NotTo(BeEmpty(), "%s has no tenant id", u.Name)
			Expect(ids).To(HaveKeyWithValue(strings.ToLower(u.Spec.Email), u.Status.ID))
		}
		GinkgoWriter.Printf("config/samples Ready: %d users, tenant holds %d users\n", len(users.Items), len(tenant))
	})

	It("refuses an unauthenticated metrics scrape and serves one bound to the chart's metrics-reader role", func() {
		port := portOf(container, intstr.FromString("metrics"))
		url := fmt.Sprintf("https://127.0.0.1:%d/metrics", port)

		By("no token: 401")
		code, err := get(first, url, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusUnauthorized))
		GinkgoWriter.Printf("metrics without a token: %d\n", code)

		By("a token the API server does not know: refused")
		// controller-runtime's filter answers 500 when the TokenReview carries an error, as
		// the API server's does for a malformed token; 401 when it says unauthenticated.
		code, body, err := getBody(first, url, "not-a-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(BeElementOf(http.StatusUnauthorized, http.StatusInternalServerError))
		Expect(body).NotTo(ContainSubstring("controller_runtime"))
		GinkgoWriter.Printf("metrics with an unknown token: %d\n", code)

		By("a valid token without the metrics-reader role: 403")
		stranger := scraperToken("stranger", "")
		code, err = get(first, url, stranger)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusForbidden))
		GinkgoWriter.Printf("metrics with an unbound token: %d\n", code)

		By("a token bound to the metrics-reader ClusterRole: 200 and the controller's metrics")
		reader := scraperToken("prometheus", release+"-cipherscale-operator-metrics-reader")
		Eventually(func() (int, error) {
			code, b, err := getBody(first, url, reader)
			body = b
			return code, err
		}).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
		Expect(body).To(ContainSubstring(`controller="cipherscaleuser"`))
		GinkgoWriter.Printf("metrics with a metrics-reader token: 200, %d bytes\n", len(body))
	})

	It("hands the lease over to a second replica when the first is stopped", func() {
		By("starting the second replica: ready, standing by")
		second = startPod("cso-manager-b")
		ready := fmt.Sprintf("http://127.0.0.1:%d%s", probePort(container.ReadinessProbe), container.ReadinessProbe.HTTPGet.Path)
		Eventually(func() (int, error) { return get(second, ready, "") }).WithTimeout(60*time.Second).
			Should(Equal(http.StatusOK), "log:\n%s", second.log())
		Expect(leaseHolder()).To(HavePrefix(first.name + "_"))

		By("stopping the first as the kubelet does: SIGTERM, then the grace period")
		first.terminate()
		grace := time.Duration(*deployment.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
		Eventually(first.exited).WithTimeout(grace).Should(BeTrue(), "the first replica outlived its grace period")
		exitedAfter := time.Since(first.stopped)
		Expect(first.cmd.ProcessState.ExitCode()).To(BeZero(), "log:\n%s", first.log())

		Eventually(leaseHolder).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).
			Should(HavePrefix(second.name+"_"), "log:\n%s", second.log())
		handOver := time.Since(first.stopped)
		GinkgoWriter.Printf("lease hand-over: first exited %v after SIGTERM, second leads %v after SIGTERM\n",
			exitedAfter.Round(time.Millisecond), handOver.Round(time.Millisecond))
		AddReportEntry("lease hand-over", handOver.Round(time.Millisecond).String())

		By("the new leader reconciles: a new user becomes Ready")
		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Name: "after-failover", Namespace: "default"},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: "after.failover@example.com"},
		}
		Expect(k8s.Create(ctx, u)).To(Succeed())
		out, err := devenv.Kubectl(ctx, root, cp.Kubeconfig, "wait", "--for=condition=Ready", "csu/after-failover", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), "%s\nlog:\n%s", out, second.log())
	})
})

// leaseHolder is the holder of the manager's leader election lease, or "".
func leaseHolder() string {
	var lease coordinationv1.Lease
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: leaseName}, &lease); err != nil {
		return ""
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// scraperToken makes a ServiceAccount `name` in a monitoring namespace, binds it to the
// ClusterRole when one is named, and returns a token of it.
func scraperToken(name, clusterRole string) string {
	GinkgoHelper()
	const ns = "monitoring"
	_ = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})).To(Succeed())
	if clusterRole != "" {
		var role rbacv1.ClusterRole
		Expect(k8s.Get(ctx, client.ObjectKey{Name: clusterRole}, &role)).To(Succeed(), "the chart's ClusterRole %s", clusterRole)
		Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-metrics-reader"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
		})).To(Succeed())
	}
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// get requests url from inside the pod's network namespace, with a bearer token if given, and
// returns the status code.
func get(p *pod, url, token string) (int, error) {
	code, _, err := getBody(p, url, token)
	return code, err
}

func getBody(p *pod, url, token string) (int, string, error) {
	// The metrics endpoint serves a self-signed certificate, as in the cluster.
	c := p.httpClient(&http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}) //nolint:gosec // self-signed, as the ServiceMonitor says
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// portOf resolves a probe's port (a number or a container port's name).
func portOf(c corev1.Container, port intstr.IntOrString) int {
	GinkgoHelper()
	if port.Type == intstr.Int {
		return port.IntValue()
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort)
		}
	}
	Fail("no container port named " + port.StrVal)
	return 0
}

// procStatus is a field of /proc/PID/status of the container's process.
func procStatus(p *pod, field string) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procMounts maps the mount points the container sees to their options.
func procMounts(p *pod) map[string][]string {
	GinkgoHelper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", p.pid()))
	Expect(err).NotTo(HaveOccurred())
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		// Mount points are relative to the process's root; others show as unreachable.
		mp, err := strconv.Unquote(`"` + f[4] + `"`)
		if err != nil {
			mp = f[4]
		}
		out[mp] = strings.Split(f[5], ",")
	}
	return out
}

func readYAML(path string, into any) {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	Expect(yaml.Unmarshal(b, into)).To(Succeed())
}
