// Package chart holds the tests of the Helm chart in charts/cipherscale-operator: lint, the
// values schema, what the templates render, a server-side dry run of the rendered objects on a
// real kube-apiserver (envtest), RBAC parity with config/rbac and a kube-score gate.
package chart
