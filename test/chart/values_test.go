package chart_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

// The release everything is rendered as.
const (
	release   = "cso"
	releaseNS = "cipherscale-system"
	// fullname is the prefix of the objects' names: the release name, then the chart's.
	fullname   = release + "-cipherscale-operator"
	secretName = "cipherscale-api-key"
)

// defaultValues are the chart's defaults with the only value that has none.
func defaultValues() map[string]any {
	return map[string]any{"apiKey": map[string]any{"existingSecret": secretName}}
}

// customValues sets every value to something other than its default.
const customValues = `
image:
  repository: registry.example.com/platform/cipherscale-operator
  tag: v9.8.7
  pullPolicy: IfNotPresent
imagePullSecrets:
  - name: regcred
replicas: 2
apiKey:
  existingSecret: cs-token
  key: token
defaultTenant:
  create: true
  url: https://cipherscale.internal.example:8443/api
  namespaceSelector:
    matchLabels: {cipherscale.com/tenant: default}
  adoption:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: team-a}
  privileged:
    namespaceSelector:
      matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: In, values: [platform, team-a]}
    roles: [11111111-1111-4111-8111-111111111111]
  requestsPerSecond: 3
  burst: 7
  resyncInterval: 5m30s
  removalsPerHour: 40
  undeclaredUsers:
    policy: Report
    exclude: [breakglass@example.com, "*@partner.example.com"]
    gracePeriod: 48h
  defaultDeletionPolicy: Deactivate
  invitationsPerDay: 3
allowInsecureHttp: true
apiHosts: [cipherscale.internal.example, "*.cipherscale.example"]
maxConcurrentReconciles: 4
createBatchWindow: 100ms
watchNamespaces: [team-a, team-b]
logLevel: debug
metrics:
  enabled: true
  port: 9443
  serviceMonitor:
    enabled: true
    interval: 15s
    labels:
      release: kube-prometheus
networkPolicy:
  enabled: true
  metricsFrom:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: monitoring
resources:
  requests:
    cpu: 50m
    memory: 128Mi
    ephemeral-storage: 32Mi
  limits:
    cpu: "1"
    memory: 512Mi
    ephemeral-storage: 128Mi
nodeSelector:
  kubernetes.io/os: linux
  node-role.example.com/operators: "true"
tolerations:
  - key: dedicated
    operator: Equal
    value: operators
    effect: NoSchedule
affinity: {}
podAnnotations:
  example.com/team: platform
podLabels:
  example.com/cost-center: iam
priorityClassName: operators-high
serviceAccount:
  create: true
  name: cso-manager
  annotations:
    example.com/owner: platform
`

// chartMeta is what the tests read from Chart.yaml.
type chartMeta struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion"`
}

func readChartMeta() chartMeta {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var m chartMeta
	Expect(yaml.Unmarshal(data, &m)).To(Succeed())
	return m
}

// with returns a copy of the default values with the changes merged at the top level, or one
// level down for maps.
func with(changes map[string]any) map[string]any {
	out := defaultValues()
	for k, v := range changes {
		if vm, ok := v.(map[string]any); ok {
			if cur, ok := out[k].(map[string]any); ok {
				merged := map[string]any{}
				for ck, cv := range cur {
					merged[ck] = cv
				}
				for ck, cv := range vm {
					merged[ck] = cv
				}
				out[k] = merged
				continue
			}
		}
		out[k] = v
	}
	return out
}
