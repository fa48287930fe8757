// Package v1alpha1 holds the types of the iam.cipherscale.com API: CipherscaleUser and
// CipherscaleGroupMembership, their validation (schema and CEL rules), and the condition types,
// reasons, annotations and finalizer the controllers use.
// +kubebuilder:object:generate=true
// +groupName=iam.cipherscale.com
package v1alpha1
