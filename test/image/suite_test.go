package image_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const (
	apiKey    = "image-test-api-key-7c1e"
	release   = "cso"
	namespace = "cipherscale-system"
	// The Secret the installer creates, and the chart mounts.
	secretName = "cipherscale-api-key"
	// The ServiceAccount token's lifetime, as the kubelet asks for it.
	tokenSeconds = 3607
)

var (
	ctx    context.Context
	cancel context.CancelFunc
	root   string
	work   string
	cp     *devenv.ControlPlane
	kube   kubernetes.Interface
	k8s    client.Client
	sim    *devenv.Simulator
	// simControl reads and seeds the simulator's tenant.
	simControl *devenv.SimControl

	// What the image and the chart say.
	imageTar    string
	imageConfig *v1.ConfigFile
	imageAnns   map[string]string
	rootfs      string
	rendered    []*unstructured.Unstructured
	deployment  *appsv1.Deployment
	apiHostPort string
)

func TestImage(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Image suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	root, err = devenv.Root()
	Expect(err).NotTo(HaveOccurred())
	work = GinkgoT().TempDir()

	Expect(os.Geteuid()).To(BeZero(),
		"running the image as a pod needs root (mount and network namespaces, chroot, setuid): run `sudo make image-test`")
	for _, tool := range []string{"unshare", "setpriv", "chroot", "mount", "ip", "hostname", "env", "sh"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "%s is needed to run the image (util-linux, coreutils, iproute2)", tool)
	}

	// `make image-test` builds the image first and names it in IMAGE_TAR. Otherwise (go test,
	// make test) the suite builds it with the program behind `make image`, for this machine's
	// platform only, so that it never tests a stale image.
	imageTar = os.Getenv("IMAGE_TAR")
	if imageTar == "" {
		By("building the image with hack/image for linux/" + runtime.GOARCH)
		imageTar = filepath.Join(work, "image.oci.tar")
		cmd := exec.CommandContext(ctx, "go", "run", "./hack/image", "-out", imageTar, "-platforms", "linux/"+runtime.GOARCH)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "hack/image:\n%s", out)
	}
	_, err = os.Stat(imageTar)
	Expect(err).NotTo(HaveOccurred(), "IMAGE_TAR=%s", imageTar)

	By("unpacking the image's root filesystem for " + runtime.GOARCH)
	rootfs = filepath.Join(work, "rootfs")
	Expect(os.MkdirAll(rootfs, 0o755)).To(Succeed())
	imageConfig, imageAnns, err = extractImage(imageTar, rootfs, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	Expect(err).NotTo(HaveOccurred())

	By("building the simulator and starting it with the demo seed")
	bins, err := devenv.BuildBinaries(root, work, "cipherscale-sim")
	Expect(err).NotTo(HaveOccurred())
	sim, err = devenv.StartSimulator(bins["cipherscale-sim"], filepath.Join(work, "sim.log"), apiKey, "--demo-seed")
	Expect(err).NotTo(HaveOccurred())
	simControl = devenv.NewSimControl(sim.URL)
	// The tenant user the samples' Contractors membership names by email (no CipherscaleUser).
	_, err = simControl.AddUser(ctx, simulator.UserSeed{Email: "contractor@example.com", Status: cipherscale.StatusActive})
	Expect(err).NotTo(HaveOccurred())

	By("starting kube-apiserver and etcd")
	cp, err = devenv.StartControlPlane(root, filepath.Join(work, "admin.kubeconfig"))
	Expect(err).NotTo(HaveOccurred())
	k8s = cp.Client
	kube, err = kubernetes.NewForConfig(cp.Config)
	Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(cp.Config.Host)
	Expect(err).NotTo(HaveOccurred())
	apiHostPort = u.Host

	By("rendering the chart with helm template, two replicas, the simulator as the API")
	rendered = helmTemplate(
		"--set", "apiKey.existingSecret="+secretName,
		"--set", "defaultTenant.url="+sim.URL,
		"--set", "replicas=2",
		// The simulator serves plain http on loopback: the operator's URL policy must say so.
		"--set", "apiHosts={127.0.0.1,localhost}",
		"--set", "allowInsecureHttp=true",
		// config/samples adopt a user added by hand and grant Admin (see their kustomization).
		"--set", "defaultTenant.adoption.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=default",
		"--set", "defaultTenant.privileged.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=default",
	)
	for _, o := range rendered {
		if o.GetKind() == "Deployment" {
			deployment = &appsv1.Deployment{}
			Expect(runtimeConvert(o, deployment)).To(Succeed())
		}
	}
	Expect(deployment).NotTo(BeNil(), "the chart renders no Deployment")

	By("installing what the chart renders, and the API key Secret the installer creates")
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	// As the chart's NOTES say: the Secret consents to ClusterCipherscaleTenant/default.
	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: namespace,
			// The chart's default tenant may use it (see the chart's NOTES).
			Annotations: map[string]string{"cipherscale.com/allowed-tenants": "ClusterCipherscaleTenant/default"}},
		StringData: map[string]string{"api-key": apiKey},
	})).To(Succeed())
	for _, o := range rendered {
		Expect(k8s.Create(ctx, o)).To(Succeed(), "creating %s %s", o.GetKind(), o.GetName())
	}
})

var _ = AfterSuite(func() {
	for _, p := range pods {
		p.kill()
	}
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

// pods are every pod started, for AfterSuite.
var pods []*pod

// helmTemplate renders the chart with bin/helm and parses the objects.
func helmTemplate(args ...string) []*unstructured.Unstructured {
	GinkgoHelper()
	helm := filepath.Join(root, "bin", "helm")
	_, err := os.Stat(helm)
	Expect(err).NotTo(HaveOccurred(), "no helm at %s: run `make helm`", helm)
	home := GinkgoT().TempDir()
	cmd := exec.CommandContext(ctx, helm, append([]string{"template", release,
		filepath.Join(root, "charts", "cipherscale-operator"), "--namespace", namespace}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	Expect(cmd.Run()).To(Succeed(), "helm template: %s", stderr.String())
	dec := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}

// startPod runs the chart's pod named name: its volumes made as the kubelet makes them, its
// container run from the image.
func startPod(name string) *pod {
	GinkgoHelper()
	spec := deployment.Spec.Template.Spec
	Expect(spec.Containers).To(HaveLen(1))
	ctr := spec.Containers[0]
	dir := filepath.Join(work, "pods", name)
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())

	var fsGroup int64 = -1
	if spec.SecurityContext != nil && spec.SecurityContext.FSGroup != nil {
		fsGroup = *spec.SecurityContext.FSGroup
	}
	volumes := map[string]string{}
	for _, v := range spec.Volumes {
		Expect(v.Secret).NotTo(BeNil(), "volume %s: only Secret volumes are made here", v.Name)
		volumes[v.Name] = secretVolume(filepath.Join(dir, "volumes", v.Name), v.Secret, fsGroup)
	}
	var mounts []volume
	for _, m := range ctr.VolumeMounts {
		Expect(m.ReadOnly).To(BeTrue(), "mount %s is not read-only", m.Name)
		Expect(m.SubPath).To(BeEmpty())
		host, ok := volumes[m.Name]
		Expect(ok).To(BeTrue(), "mount %s names no volume", m.Name)
		mounts = append(mounts, volume{hostDir: host, mountPath: m.MountPath})
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		mounts = append(mounts, volume{
			hostDir:   serviceAccountVolume(filepath.Join(dir, "volumes", "kube-api-access"), spec.ServiceAccountName, fsGroup),
			mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
		})
	}
	host, port, err := splitHostPort(apiHostPort)
	Expect(err).NotTo(HaveOccurred())
	simURL, err := url.Parse(sim.URL)
	Expect(err).NotTo(HaveOccurred())
	p, err := runPod(podSpec{
		name: name, rootfs: rootfs, image: imageConfig, pod: spec, ctr: ctr, volumes: mounts,
		kubeEnv: []string{
			"KUBERNETES_SERVICE_HOST=" + host,
			"KUBERNETES_SERVICE_PORT=" + port,
			"KUBERNETES_SERVICE_PORT_HTTPS=" + port,
			"KUBERNETES_PORT=tcp://" + apiHostPort,
		},
		forwards: []string{apiHostPort, simURL.Host},
		logPath:  filepath.Join(dir, "container.log"),
	})
	Expect(err).NotTo(HaveOccurred())
	pods = append(pods, p)
	return p
}

// secretVolume writes the items of the Secret as the kubelet does: the file named by each item,
// owned by root and the fsGroup, with the volume's defaultMode.
func secretVolume(dir string, src *corev1.SecretVolumeSource, fsGroup int64) string {
	GinkgoHelper()
	var secret corev1.Secret
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: src.SecretName}, &secret)).To(Succeed())
	mode := int32(0o644)
	if src.DefaultMode != nil {
		mode = *src.DefaultMode
	}
	files := map[string][]byte{}
	if len(src.Items) == 0 {
		for k, v := range secret.Data {
			files[k] = v
		}
	}
	for _, it := range src.Items {
		data, ok := secret.Data[it.Key]
		Expect(ok).To(BeTrue(), "the Secret has no key %s", it.Key)
		files[it.Path] = data
	}
	writeVolume(dir, files, os.FileMode(mode), fsGroup)
	return dir
}

// serviceAccountVolume writes what the kubelet projects at
// /var/run/secrets/kubernetes.io/serviceaccount: a token of the ServiceAccount from the
// TokenRequest API, the cluster's CA and the namespace.
func serviceAccountVolume(dir, serviceAccount string, fsGroup int64) string {
	GinkgoHelper()
	expiry := int64(tokenSeconds)
	tr, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "TokenRequest for ServiceAccount %s/%s", namespace, serviceAccount)
	Expect(tr.Status.Token).NotTo(BeEmpty())
	writeVolume(dir, map[string][]byte{
		"token":     []byte(tr.Status.Token),
		"ca.crt":    cp.Config.CAData,
		"namespace": []byte(namespace),
	}, 0o644, fsGroup)
	return dir
}

func writeVolume(dir string, files map[string][]byte, mode os.FileMode, fsGroup int64) {
	GinkgoHelper()
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	gid := 0
	if fsGroup >= 0 {
		gid = int(fsGroup)
		// With an fsGroup the kubelet makes the files readable by the group.
		mode |= 0o040
	}
	Expect(os.Chown(dir, 0, gid)).To(Succeed())
	for name, data := range files {
		p := filepath.Join(dir, name)
		Expect(os.WriteFile(p, data, 0o600)).To(Succeed())
		Expect(os.Chown(p, 0, gid)).To(Succeed())
		Expect(os.Chmod(p, mode)).To(Succeed())
	}
}

func splitHostPort(hp string) (string, string, error) {
	u, err := url.Parse("//" + hp)
	if err != nil {
		return "", "", err
	}
	if _, err := strconv.Atoi(u.Port()); err != nil {
		return "", "", fmt.Errorf("no port in %q", hp)
	}
	return u.Hostname(), u.Port(), nil
}

// runtimeConvert converts a rendered object into a typed one, strictly.
func runtimeConvert(u *unstructured.Unstructured, into any) error {
	return kruntime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true)
}
