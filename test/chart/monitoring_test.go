package chart_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

// The alert rules and the dashboard are files of the chart that promtool tests (make
// test-rules); the templates must deliver them as they are.
var _ = Describe("the alert rules and the dashboard", func() {
	withMonitoring := func(extra string) map[string]any {
		GinkgoHelper()
		v := defaultValues()
		var m map[string]any
		Expect(yaml.Unmarshal([]byte(extra), &m)).To(Succeed())
		for k, x := range m {
			v[k] = x
		}
		return v
	}

	It("are off by default", func() {
		objs := render(release, releaseNS, defaultValues())
		Expect(ofKind(objs, "PrometheusRule")).To(BeEmpty())
		for _, cm := range ofKind(objs, "ConfigMap") {
			Expect(cm.GetLabels()).NotTo(HaveKey("grafana_dashboard"))
		}
	})

	It("render the rules file as the PrometheusRule's spec, runbook links and extra labels applied", func() {
		objs := render(release, releaseNS, withMonitoring(`
prometheusRule:
  enabled: true
  labels: {release: kube-prometheus}
  additionalLabels: {team: identity}
  runbookBaseURL: https://wiki.example.com/cipherscale/`))
		pr := one(objs, "PrometheusRule")
		Expect(pr.GetAPIVersion()).To(Equal("monitoring.coreos.com/v1"))
		Expect(pr.GetNamespace()).To(Equal(releaseNS))
		Expect(pr.GetLabels()).To(HaveKeyWithValue("release", "kube-prometheus"))

		raw, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var want map[string]any
		Expect(yaml.Unmarshal([]byte(strings.ReplaceAll(string(raw),
			"https://github.com/cipherscale/cipherscale-operator/blob/main/docs/operations.md",
			"https://wiki.example.com/cipherscale")), &want)).To(Succeed())
		for _, g := range want["groups"].([]any) {
			for _, r := range g.(map[string]any)["rules"].([]any) {
				r.(map[string]any)["labels"].(map[string]any)["team"] = "identity"
			}
		}
		Expect(pr.Object["spec"]).To(Equal(want))
		Expect(pr.Object["spec"]).To(HaveKey("groups"))
		rules := want["groups"].([]any)[0].(map[string]any)["rules"].([]any)
		Expect(rules).To(HaveLen(8))
		for _, r := range rules {
			ann := r.(map[string]any)["annotations"].(map[string]any)
			Expect(ann["runbook_url"]).To(HavePrefix("https://wiki.example.com/cipherscale#cipherscale"))
		}
	})

	It("deliver the dashboard byte for byte in a ConfigMap for the Grafana sidecar", func() {
		objs := render(release, releaseNS, withMonitoring(`
dashboard:
  enabled: true
  namespace: monitoring
  annotations: {grafana_folder: Identity}`))
		var cm map[string]any
		for _, o := range ofKind(objs, "ConfigMap") {
			if o.GetLabels()["grafana_dashboard"] == "1" {
				Expect(cm).To(BeNil(), "one dashboard ConfigMap")
				cm = o.Object
				Expect(o.GetNamespace()).To(Equal("monitoring"))
				Expect(o.GetAnnotations()).To(HaveKeyWithValue("grafana_folder", "Identity"))
			}
		}
		Expect(cm).NotTo(BeNil())
		raw, err := os.ReadFile(filepath.Join(chartDir, "files", "dashboard.json"))
		Expect(err).NotTo(HaveOccurred())
		data := cm["data"].(map[string]any)["cipherscale-operator.json"].(string)
		Expect(data).To(Equal(string(raw)))
		var d map[string]any
		Expect(json.Unmarshal([]byte(data), &d)).To(Succeed())
		Expect(d["uid"]).To(Equal("cipherscale-operator"))
	})
})
