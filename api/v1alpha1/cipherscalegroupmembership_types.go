package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CipherscaleGroupMembershipSpec declares members of one Cipherscale group.
// +kubebuilder:validation:XValidation:rule="has(self.tenantRef) == has(oldSelf.tenantRef)",message="spec.tenantRef is immutable: it cannot be added or removed"
type CipherscaleGroupMembershipSpec struct {
	// groupId is the UUID of the Cipherscale group. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.groupId is immutable: create a new CipherscaleGroupMembership for another group"
	GroupID ID `json:"groupId"`

	// policy: Additive only adds the declared members; Authoritative also removes members of
	// the group that nothing declares.
	// +optional
	// +kubebuilder:default=Additive
	Policy MembershipPolicy `json:"policy,omitempty"`

	// deletionPolicy: Delete removes, when this object is deleted, the members it declared that
	// nothing else declares; Orphan leaves them in the group.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy MembershipDeletionPolicy `json:"deletionPolicy,omitempty"`

	// members of the group: each a userRef to a CipherscaleUser in this namespace, or the email
	// of a tenant user that no CipherscaleUser manages.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Members []Member `json:"members,omitempty"`
	// tenantRef names the tenant of this membership. Omitted: the operator's default tenant.
	// Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.tenantRef is immutable: create a new object for another tenant"
	TenantRef *TenantReference `json:"tenantRef,omitempty"`
}

// Member is one member of a group: exactly one of userRef and email.
// +kubebuilder:validation:XValidation:rule="has(self.userRef) != has(self.email)",message="a member sets exactly one of userRef and email"
type Member struct {
	// userRef names a CipherscaleUser in the membership's namespace.
	// +optional
	UserRef *UserReference `json:"userRef,omitempty"`

	// email of a tenant user that no CipherscaleUser manages. Matched case-insensitively.
	// +optional
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s.]+$')",message="member email must be an email address such as jane@example.com"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\p{Cc}\\\\p{Cf}]')",message="member email must not contain control or formatting characters (such as bidirectional overrides)"
	Email string `json:"email,omitempty"`
}

// UserReference names a CipherscaleUser in the same namespace.
type UserReference struct {
	// name of the CipherscaleUser.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// MemberStatus is the observed state of one declared member.
type MemberStatus struct {
	// userRef is the member's CipherscaleUser, when it was declared by reference.
	// +optional
	UserRef string `json:"userRef,omitempty"`
	// email is the member's address.
	// +optional
	Email string `json:"email,omitempty"`
	// userId is the tenant user's id, once known. It is kept so that a membership deleted after
	// its members' CipherscaleUsers still removes the pairs it declared.
	// +optional
	UserID string `json:"userId,omitempty"`
	// state: Member, WaitingForUser (the CipherscaleUser is missing or not created in the
	// tenant yet), UserNotFound (no tenant user has this email), OwnerProtected (the tenant
	// owner, never added) or NotAllowed (a user another namespace manages, or a person this
	// namespace may not adopt: nothing is written for it).
	State MemberState `json:"state"`
}

// CipherscaleGroupMembershipStatus is what the operator observed and did.
type CipherscaleGroupMembershipStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready, Reconciling and Stalled, in the kstatus convention.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// lastSyncTime is when the tenant data the operator last compared with the spec was read.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// memberCount is the number of declared members that are in the group.
	// +optional
	MemberCount int32 `json:"memberCount,omitempty"`
	// members is the state of each declared member.
	// +optional
	// +listType=atomic
	Members []MemberStatus `json:"members,omitempty"`
}

// CipherscaleGroupMembership declares members of one Cipherscale group.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=csgm,categories=cipherscale
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.spec.groupId`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.status.memberCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CipherscaleGroupMembership struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   CipherscaleGroupMembershipSpec   `json:"spec"`
	Status CipherscaleGroupMembershipStatus `json:"status,omitempty"`
}

// CipherscaleGroupMembershipList is a list of CipherscaleGroupMemberships.
// +kubebuilder:object:root=true
type CipherscaleGroupMembershipList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CipherscaleGroupMembership `json:"items"`
}
