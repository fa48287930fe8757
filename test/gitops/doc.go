// Package gitops tests what GitOps tools read from the operator's objects: kstatus (Flux's
// health checks, kubectl wait) and the Argo CD health check of docs/gitops/argocd-health.lua,
// run on real status objects that the operator produces against envtest and the simulator.
package gitops
