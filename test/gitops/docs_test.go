package gitops_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// docObjects parses a multi-document YAML file of docs/gitops.
func docObjects(name string) []*unstructured.Unstructured {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(gitopsDir, name))
	Expect(err).NotTo(HaveOccurred())
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred(), "%s", name)
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
	return out
}

func kindsOf(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetAPIVersion()+" "+o.GetKind()+" "+o.GetName())
	}
	return out
}

// renderChart renders the chart with the values, as Argo CD or Flux would: the values a
// document gives must pass the chart's schema and templates.
func renderChart(values map[string]any) {
	GinkgoHelper()
	helmBin := filepath.Join(repoRoot, "bin", "helm")
	_, err := os.Stat(helmBin)
	Expect(err).NotTo(HaveOccurred(), "no helm at %s: run `make helm`", helmBin)
	data, err := yaml.Marshal(values)
	Expect(err).NotTo(HaveOccurred())
	f := filepath.Join(GinkgoT().TempDir(), "values.yaml")
	Expect(os.WriteFile(f, data, 0o600)).To(Succeed())
	home := GinkgoT().TempDir()
	cmd := exec.CommandContext(ctx, helmBin, "template", "cipherscale-operator",
		filepath.Join(repoRoot, "charts", "cipherscale-operator"), "--namespace", "cipherscale-system", "--values", f)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "helm template with the document's values: %s", out)
	Expect(string(out)).To(ContainSubstring("kind: Deployment"))
}

var _ = Describe("docs/gitops", func() {
	It("argocd-cm.yaml installs argocd-health.lua, unchanged, for the four kinds", func() {
		objs := docObjects("argocd-cm.yaml")
		Expect(objs).To(HaveLen(1))
		cm := objs[0]
		Expect(cm.GetKind()).To(Equal("ConfigMap"))
		Expect(cm.GetName()).To(Equal("argocd-cm"))
		data, _, err := unstructured.NestedStringMap(cm.Object, "data")
		Expect(err).NotTo(HaveOccurred())
		script := readScript()
		Expect(data).To(HaveLen(4))
		for _, kind := range []string{"CipherscaleUser", "CipherscaleGroupMembership", "CipherscaleTenant", "ClusterCipherscaleTenant"} {
			key := "resource.customizations.health.iam.cipherscale.com_" + kind
			Expect(data).To(HaveKey(key))
			Expect(strings.TrimSpace(data[key])).To(Equal(strings.TrimSpace(script)), "the script of %s", kind)
		}
	})

	It("argocd-application.yaml holds the operator's Application and the users' Application", func() {
		objs := docObjects("argocd-application.yaml")
		Expect(kindsOf(objs)).To(Equal([]string{
			"argoproj.io/v1alpha1 Application cipherscale-operator",
			"argoproj.io/v1alpha1 Application cipherscale-users-team-a",
		}))
		op := objs[0]
		path, _, _ := unstructured.NestedString(op.Object, "spec", "source", "path")
		Expect(path).To(Equal("charts/cipherscale-operator"))
		Expect(filepath.Join(repoRoot, path, "Chart.yaml")).To(BeAnExistingFile())
		values, found, err := unstructured.NestedMap(op.Object, "spec", "source", "helm", "valuesObject")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue())
		renderChart(values)

		users := objs[1]
		ns, _, _ := unstructured.NestedString(users.Object, "spec", "destination", "namespace")
		Expect(ns).NotTo(BeEmpty())
		opts, _, _ := unstructured.NestedStringSlice(users.Object, "spec", "syncPolicy", "syncOptions")
		Expect(opts).To(ContainElement("SkipDryRunOnMissingResource=true"))
	})

	It("flux-kustomization.yaml installs the chart and waits for the CRs", func() {
		objs := docObjects("flux-kustomization.yaml")
		Expect(kindsOf(objs)).To(Equal([]string{
			"v1 Namespace cipherscale-system",
			"source.toolkit.fluxcd.io/v1 HelmRepository cipherscale",
			"helm.toolkit.fluxcd.io/v2 HelmRelease cipherscale-operator",
			"kustomize.toolkit.fluxcd.io/v1 Kustomization cipherscale-operator",
			"kustomize.toolkit.fluxcd.io/v1 Kustomization cipherscale-users-team-a",
		}))
		hr := objs[2]
		chart, _, _ := unstructured.NestedString(hr.Object, "spec", "chart", "spec", "chart")
		Expect(chart).To(Equal("cipherscale-operator"))
		values, found, err := unstructured.NestedMap(hr.Object, "spec", "values")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue())
		renderChart(values)

		users := objs[4]
		wait, _, _ := unstructured.NestedBool(users.Object, "spec", "wait")
		Expect(wait).To(BeTrue(), "Flux checks every applied CR with kstatus")
		deps, _, _ := unstructured.NestedSlice(users.Object, "spec", "dependsOn")
		Expect(deps).To(ConsistOf(HaveKeyWithValue("name", "cipherscale-operator")))
	})

	It("README.md explains each file", func() {
		data, err := os.ReadFile(filepath.Join(gitopsDir, "README.md"))
		Expect(err).NotTo(HaveOccurred())
		for _, f := range []string{"argocd-application.yaml", "flux-kustomization.yaml", "argocd-health.lua", "argocd-cm.yaml"} {
			Expect(string(data)).To(ContainSubstring(f))
		}
	})
})
