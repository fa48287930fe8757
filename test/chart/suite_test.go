package chart_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// Paths, relative to this package's directory (where go test runs).
var (
	repoRoot      = filepath.Join("..", "..")
	chartDir      = filepath.Join(repoRoot, "charts", "cipherscale-operator")
	chartCRDsDir  = filepath.Join(chartDir, "crds")
	configCRDsDir = filepath.Join(repoRoot, "config", "crd", "bases")
	configRole    = filepath.Join(repoRoot, "config", "rbac", "role.yaml")
	helmBin       = filepath.Join(repoRoot, "bin", "helm")
	kubeScoreBin  = filepath.Join(repoRoot, "bin", "kube-score")
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	testEnv   *envtest.Environment
	k8sClient client.Client
	// warnClient is k8sClient with the API server's warnings collected into warnings.
	warnClient client.Client
	warnings   = &warningCollector{}
	// helmEnv isolates helm from the user's configuration, cache and repositories.
	helmEnv []string
)

func TestChart(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Helm chart suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(func() { cancel() })

	_, err := os.Stat(helmBin)
	Expect(err).NotTo(HaveOccurred(), "no helm at %s: run `make helm`", helmBin)

	home := GinkgoT().TempDir()
	helmEnv = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(repoRoot, "bin", "k8s")
	}
	_, err = os.Stat(filepath.Join(assets, "kube-apiserver"))
	Expect(err).NotTo(HaveOccurred(),
		"no kube-apiserver in %s: run `make envtest-assets` or set KUBEBUILDER_ASSETS", assets)

	testEnv = &envtest.Environment{
		// The chart's own copy of the CRDs: what `helm install` would create.
		CRDDirectoryPaths:     []string{chartCRDsDir},
		ErrorIfCRDPathMissing: true,
		CRDs:                  []*apiextensionsv1.CustomResourceDefinition{serviceMonitorCRD()},
		BinaryAssetsDirectory: assets,
		// A cold start on a busy two-core machine can take longer than the default 20s.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	warnCfg := rest.CopyConfig(cfg)
	warnCfg.WarningHandlerWithContext = warnings
	warnClient, err = client.New(warnCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
})

// warningCollector keeps the warnings the API server sends (deprecations, Pod Security).
type warningCollector struct {
	mu   sync.Mutex
	list []string
}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (w *warningCollector) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// take returns the warnings received since the last call and forgets them.
func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// serviceMonitorCRD is a minimal stand-in for the Prometheus Operator's ServiceMonitor CRD, so
// that the chart's ServiceMonitor can be dry-run too. Its schema accepts any spec: it checks
// that the object is well-formed and addressed to the right group, version and kind, not the
// Prometheus Operator's own validation.
func serviceMonitorCRD() *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "servicemonitors.monitoring.coreos.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "monitoring.coreos.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "servicemonitors", Singular: "servicemonitor", Kind: "ServiceMonitor", ListKind: "ServiceMonitorList",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", XPreserveUnknownFields: &preserve},
					},
				}},
			}},
		},
	}
}

// ---- running helm ----

// helm runs the helm binary with args and returns its stdout, and its stderr as the error's
// text when it fails.
func helm(args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, helmBin, args...)
	cmd.Env = helmEnv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %v: %w: %s%s", args, err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// valuesFile writes values (a Go map or a YAML string) into a temporary values file.
func valuesFile(values any) string {
	GinkgoHelper()
	var data []byte
	switch v := values.(type) {
	case string:
		data = []byte(v)
	default:
		var err error
		data, err = yaml.Marshal(v)
		Expect(err).NotTo(HaveOccurred())
	}
	f := filepath.Join(GinkgoT().TempDir(), "values.yaml")
	Expect(os.WriteFile(f, data, 0o600)).To(Succeed())
	return f
}

// template renders the chart as release `release` in namespace `namespace` with the values,
// and returns helm's output or its error.
func template(release, namespace string, values any, extra ...string) (string, error) {
	args := []string{"template", release, chartDir, "--namespace", namespace}
	if values != nil {
		args = append(args, "--values", valuesFile(values))
	}
	return helm(append(args, extra...)...)
}

// render renders the chart and parses every object it holds; rendering must succeed.
func render(release, namespace string, values any) []*unstructured.Unstructured {
	GinkgoHelper()
	out, err := template(release, namespace, values)
	Expect(err).NotTo(HaveOccurred())
	return parseObjects(out)
}

// parseObjects decodes a multi-document YAML stream into objects, skipping empty documents.
func parseObjects(stream string) []*unstructured.Unstructured {
	GinkgoHelper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		Expect(u.GetAPIVersion()).NotTo(BeEmpty(), "an object without apiVersion: %v", m)
		Expect(u.GetKind()).NotTo(BeEmpty(), "an object without kind: %v", m)
		objs = append(objs, u)
	}
	return objs
}

// ofKind returns the objects of the kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of the kind, failing when there is not exactly one.
func one(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	GinkgoHelper()
	list := ofKind(objs, kind)
	Expect(list).To(HaveLen(1), "exactly one %s", kind)
	return list[0]
}

// into converts an object into a typed one.
func into[T any](u *unstructured.Unstructured) *T {
	GinkgoHelper()
	out := new(T)
	Expect(u).NotTo(BeNil(), "no object to convert into %T", out)
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true)).To(Succeed(),
		"%s %s does not convert strictly to %T", u.GetKind(), u.GetName(), out)
	return out
}
