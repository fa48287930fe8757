// Package onboarding is the kubectl-cipherscale plugin's logic: reading a whole tenant, writing it
// out as CipherscaleUser (and optionally CipherscaleGroupMembership) manifests with stable names,
// loading manifests back, and planning what the operator would do with them, using the same pure
// functions as the controllers (internal/plan). It never writes to the tenant or the cluster.
package onboarding
