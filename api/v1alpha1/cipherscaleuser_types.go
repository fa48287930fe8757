package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ID is the UUID of a Cipherscale role or group.
// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
// +kubebuilder:validation:MaxLength=36
type ID = string

// CipherscaleUserSpec is the desired state of one user of the Cipherscale tenant.
// +kubebuilder:validation:XValidation:rule="has(self.tenantRef) == has(oldSelf.tenantRef)",message="spec.tenantRef is immutable: it cannot be added or removed"
type CipherscaleUserSpec struct {
	// email is the user's address: the key that ties this object to the tenant user.
	// Matched case-insensitively. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s.]+$')",message="spec.email must be an email address such as jane@example.com"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\p{Cc}\\\\p{Cf}]')",message="spec.email must not contain control or formatting characters (such as bidirectional overrides)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.email is immutable: create a new CipherscaleUser for another address"
	Email string `json:"email"`

	// firstName is the user's first name. Omitted: not managed.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\p{Cc}\\\\x{061c}\\\\x{200e}\\\\x{200f}\\\\x{202a}-\\\\x{202e}\\\\x{2066}-\\\\x{2069}]')",message="spec.firstName must not contain control or bidirectional formatting characters"
	// +kubebuilder:validation:MaxLength=128
	FirstName *string `json:"firstName,omitempty"`

	// lastName is the user's last name. Omitted: not managed.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\p{Cc}\\\\x{061c}\\\\x{200e}\\\\x{200f}\\\\x{202a}-\\\\x{202e}\\\\x{2066}-\\\\x{2069}]')",message="spec.lastName must not contain control or bidirectional formatting characters"
	// +kubebuilder:validation:MaxLength=128
	LastName *string `json:"lastName,omitempty"`

	// image is the URL or path of the user's profile image. Omitted: not managed.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Image *string `json:"image,omitempty"`

	// active false deactivates the user; true again reactivates them.
	// +optional
	// +kubebuilder:default=true
	Active *bool `json:"active,omitempty"`

	// roles are the UUIDs of the user's direct roles. Omitted: the operator does not manage
	// roles. An empty list: the user has no direct roles. Roles inherited through groups are
	// never touched.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.lowerAscii() == x.lowerAscii()))",message="spec.roles must not repeat an id"
	Roles *[]ID `json:"roles,omitempty"`

	// groups are the UUIDs of the groups the user belongs to. Omitted: the operator does not
	// manage this user's groups (memberships may still add them). A list, even empty: the user
	// is in exactly these groups plus those that CipherscaleGroupMemberships declare.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.lowerAscii() == x.lowerAscii()))",message="spec.groups must not repeat an id"
	Groups *[]ID `json:"groups,omitempty"`

	// deletionPolicy says what deleting this object does in the tenant: Delete removes the
	// user, Deactivate deactivates them, Orphan leaves them untouched. Empty: the operator's
	// tenant's spec.defaultDeletionPolicy (Delete unless set).
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// adoptionPolicy says what happens when the email already exists in the tenant:
	// IfExists takes the user over and brings them to this spec; Never refuses (AlreadyExists).
	// +optional
	// +kubebuilder:default=IfExists
	AdoptionPolicy AdoptionPolicy `json:"adoptionPolicy,omitempty"`

	// invitation resends the invitation automatically while the user has not accepted it.
	// +optional
	Invitation *InvitationSpec `json:"invitation,omitempty"`
	// tenantRef names the tenant of this user. Omitted: the operator's default tenant.
	// Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.tenantRef is immutable: create a new object for another tenant"
	TenantRef *TenantReference `json:"tenantRef,omitempty"`
}

// InvitationSpec configures automatic resending of a pending invitation.
type InvitationSpec struct {
	// resendAfter is how long after the last send the invitation is sent again, such as 72h.
	// At least 1m.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="spec.invitation.resendAfter must be at least 1m"
	ResendAfter metav1.Duration `json:"resendAfter"`

	// maxResends bounds the automatic resends.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	MaxResends *int32 `json:"maxResends,omitempty"`
}

// InvitationStatus records the invitations sent to a pending user.
type InvitationStatus struct {
	// lastSentTime is when the operator last sent (or resent) the invitation.
	// +optional
	LastSentTime *metav1.Time `json:"lastSentTime,omitempty"`
	// resends counts the automatic resends since the user was invited.
	// +optional
	Resends int32 `json:"resends,omitempty"`
	// lastResendRequest is the value of the cipherscale.com/resend-invitation annotation that
	// was last acted on; a new value resends once.
	// +optional
	LastResendRequest string `json:"lastResendRequest,omitempty"`
	// sentTimes are the times of the invitations sent in the last 24 hours, oldest first (at
	// most the tenant's spec.invitations.maxPerDay): they enforce that cap across restarts.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	SentTimes []metav1.Time `json:"sentTimes,omitempty"`
}

// CipherscaleUserStatus is what the operator observed and did.
type CipherscaleUserStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready, Reconciling and Stalled, in the kstatus convention.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// id is the tenant user's id. It mirrors the annotation cipherscale.com/user-id, which is
	// the record the operator trusts (metadata survives a backup and restore; status does not).
	// +optional
	ID string `json:"id,omitempty"`
	// state is the tenant user's state: Pending, Active or Inactive (another value the API
	// reports is shown as it came).
	// +optional
	State UserState `json:"state,omitempty"`
	// lastSyncTime is when the tenant data the operator last compared with the spec was read.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// invitation records the invitations the operator sent.
	// +optional
	Invitation *InvitationStatus `json:"invitation,omitempty"`
	// roles are the tenant user's direct roles as the tenant reports them, with their names.
	// +optional
	// +listType=atomic
	Roles []TenantRef `json:"roles,omitempty"`
	// groups are the tenant groups the user is in as the tenant reports them, with their names.
	// +optional
	// +listType=atomic
	Groups []TenantRef `json:"groups,omitempty"`
}

// TenantRef is a role or group of the tenant: its id and its name as the tenant reports it.
type TenantRef struct {
	// id of the role or group.
	ID string `json:"id"`
	// name of the role or group ("" until the tenant has reported it).
	// +optional
	Name string `json:"name,omitempty"`
}

// CipherscaleUser is a user of the Cipherscale tenant, kept as declared.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=csu,categories=cipherscale
// +kubebuilder:printcolumn:name="Email",type=string,JSONPath=`.spec.email`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CipherscaleUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   CipherscaleUserSpec   `json:"spec"`
	Status CipherscaleUserStatus `json:"status,omitempty"`
}

// CipherscaleUserList is a list of CipherscaleUsers.
// +kubebuilder:object:root=true
type CipherscaleUserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CipherscaleUser `json:"items"`
}
