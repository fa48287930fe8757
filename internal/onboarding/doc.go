// Package onboarding is the kubectl-cipherscale plugin's logic: reading a whole tenant, writing it
// out as CipherscaleUser (and optionally CipherscaleGroupMembership) manifests with stable names,
// loading manifests back, and planning what the operator would do with them (plan.go, plan_user.go,
// plan_membership.go), with the same decisions as the controllers: internal/decide over the
// objects in memory, and the pure functions of internal/plan. It never writes to the tenant or
// the cluster.
package onboarding
