package chart_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const schemaRefusal = "values don't meet the specifications of the schema"

var _ = Describe("the values", func() {
	It("must name the API key Secret: rendering without it fails with instructions", func() {
		_, err := template(release, releaseNS, nil)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("apiKey.existingSecret is required"))
		Expect(err.Error()).To(ContainSubstring("kubectl -n " + releaseNS + " create secret generic cipherscale-api-key --from-literal=api-key=KEY"))

		_, err = template(release, releaseNS, map[string]any{"apiKey": map[string]any{"existingSecret": ""}})
		Expect(err).To(MatchError(ContainSubstring("apiKey.existingSecret is required")))
	})

	DescribeTable("are refused by values.schema.json when bad",
		func(values string, where string) {
			_, err := template(release, releaseNS, "apiKey: {existingSecret: cipherscale-api-key}\n"+values)
			Expect(err).To(HaveOccurred(), "helm template accepted %q", values)
			Expect(err.Error()).To(ContainSubstring(schemaRefusal))
			Expect(err.Error()).To(ContainSubstring(where))
		},
		Entry("a negative rate", "defaultTenant: {requestsPerSecond: -1}", "/defaultTenant/requestsPerSecond"),
		Entry("a zero rate", "defaultTenant: {requestsPerSecond: 0}", "/defaultTenant/requestsPerSecond"),
		Entry("a rate given as a string", `defaultTenant: {requestsPerSecond: "10"}`, "/defaultTenant/requestsPerSecond"),
		Entry("a zero burst", "defaultTenant: {burst: 0}", "/defaultTenant/burst"),
		Entry("a fractional burst", "defaultTenant: {burst: 1.5}", "/defaultTenant/burst"),
		Entry("an unknown deletion policy", "defaultTenant: {defaultDeletionPolicy: Nuke}", "/defaultTenant/defaultDeletionPolicy"),
		Entry("a removal budget below zero", "defaultTenant: {removalsPerHour: -1}", "/defaultTenant/removalsPerHour"),
		Entry("an unknown undeclared-users policy", "defaultTenant: {undeclaredUsers: {policy: Purge, exclude: [], gracePeriod: 24h}}", "/defaultTenant/undeclaredUsers/policy"),
		Entry("a selector with an unknown operator", "defaultTenant: {adoption: {namespaceSelector: {matchExpressions: [{key: a, operator: Near}]}}}", "/defaultTenant/adoption/namespaceSelector"),
		Entry("a tenant flag of the old chart (the values moved into defaultTenant)", "apiUrl: https://x.example", "additional properties 'apiUrl' not allowed"),
		Entry("zero replicas", "replicas: 0", "/replicas"),
		Entry("fractional replicas", "replicas: 1.5", "/replicas"),
		Entry("a namespace that is no DNS label", `watchNamespaces: ["Bad_NS"]`, "/watchNamespaces/0"),
		Entry("a namespace longer than 63 characters", "watchNamespaces: ["+strings.Repeat("a", 64)+"]", "/watchNamespaces/0"),
		Entry("namespaces as a string rather than a list", "watchNamespaces: team-a,team-b", "/watchNamespaces"),
		Entry("a namespace given twice", "watchNamespaces: [a, a]", "/watchNamespaces"),
		Entry("an unknown top-level key (a typo of replicas)", "replica: 2", "additional properties 'replica' not allowed"),
		Entry("an unknown key in image", "image: {repository: r, pullPolicy: Always, tags: x}", "additional properties 'tags' not allowed"),
		Entry("a url that is no URL", "defaultTenant: {url: not a url}", "/defaultTenant/url"),
		Entry("a url of another scheme", "defaultTenant: {url: ftp://example.com/}", "/defaultTenant/url"),
		Entry("a url that is a number", "defaultTenant: {url: 42}", "/defaultTenant/url"),
		Entry("a resyncInterval in words", "defaultTenant: {resyncInterval: 10 minutes}", "/defaultTenant/resyncInterval"),
		Entry("a resyncInterval without a unit", "defaultTenant: {resyncInterval: 10}", "/defaultTenant/resyncInterval"),
		Entry("a createBatchWindow that is no duration", "createBatchWindow: fast", "/createBatchWindow"),
		Entry("an unknown log level", "logLevel: warn", "/logLevel"),
		Entry("zero concurrent reconciles", "maxConcurrentReconciles: 0", "/maxConcurrentReconciles"),
		Entry("a metrics port equal to the probes port", "metrics: {enabled: true, port: 8081}", "/metrics/port"),
		Entry("a ServiceMonitor interval that is no duration", "metrics: {enabled: true, port: 8443, serviceMonitor: {enabled: true, interval: often}}", "/metrics/serviceMonitor/interval"),
		Entry("an unknown pull policy", "image: {repository: r, pullPolicy: Sometimes}", "/image/pullPolicy"),
		Entry("a Secret name that is no DNS name", "apiKey: {existingSecret: Not_A_Name, key: api-key}", "/apiKey/existingSecret"),
		Entry("a URL in apiHosts", "apiHosts: [\"https://api.example.com\"]", "/apiHosts/0"),
		Entry("no apiHosts", "apiHosts: []", "/apiHosts"),
		Entry("allowInsecureHttp as a string", `allowInsecureHttp: "yes"`, "/allowInsecureHttp"),
		Entry("a node selector with a number", "nodeSelector: {disk: 1}", "/nodeSelector/disk"),
		Entry("an unknown resources key", "resources: {request: {cpu: 1m}}", "additional properties 'request' not allowed"),
	)

	DescribeTable("are accepted when good",
		func(values string) {
			_, err := template(release, releaseNS, "apiKey: {existingSecret: cipherscale-api-key}\n"+values)
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("compound durations", "defaultTenant: {resyncInterval: 1h30m}\ncreateBatchWindow: 1.5s"),
		Entry("no batching", "createBatchWindow: \"0\""),
		Entry("a loopback plain-HTTP URL", "defaultTenant: {url: http://127.0.0.1:8089}"),
		Entry("trust for every namespace", "defaultTenant: {adoption: {namespaceSelector: {}}, privileged: {namespaceSelector: {}}}"),
		Entry("no default tenant", "defaultTenant: {create: false}"),
		Entry("a 63-character namespace", "watchNamespaces: ["+strings.Repeat("a", 63)+"]"),
		Entry("every log level", "logLevel: error"),
	)
})
