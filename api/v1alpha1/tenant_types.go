package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Kinds a tenantRef may name.
const (
	KindClusterCipherscaleTenant = "ClusterCipherscaleTenant"
	KindCipherscaleTenant        = "CipherscaleTenant"
)

// TenantKind is the kind of a tenant object a CipherscaleUser or membership refers to.
// +kubebuilder:validation:Enum=ClusterCipherscaleTenant;CipherscaleTenant
type TenantKind string

// Condition reasons of tenants, and of objects whose tenant cannot be used.
const (
	// ReasonInvalidSecret: the tenant's Secret is missing, does not name the tenant in its
	// annotation cipherscale.com/allowed-tenants, or has no non-empty value at its key.
	ReasonInvalidSecret = "InvalidSecret"
	// ReasonInvalidURL: the tenant's URL is refused by the operator (plain http to a remote
	// host without --allow-insecure-http).
	ReasonInvalidURL = "InvalidURL"
	// ReasonInvalidTenant: an object names a tenant it may not use, or one that does not exist
	// or is not ready.
	ReasonInvalidTenant = "InvalidTenant"
)

// AnnotationAllowedTenants, on a Secret, names the tenant objects that may use it as their
// apiKeySecretRef: a comma-separated list of "ClusterCipherscaleTenant/<name>" and
// "CipherscaleTenant/<name>" (a CipherscaleTenant of the Secret's own namespace). The operator
// sends a Secret's value to no tenant it does not name, so that naming a Secret in a tenant
// object is not a way to read it: only whoever may update the Secret can consent.
const AnnotationAllowedTenants = "cipherscale.com/allowed-tenants"

// Event reasons of tenants.
const (
	EventTenantReady       = "TenantReady"
	EventTenantUnavailable = "TenantUnavailable"
)

// TenantFinalizer holds a tenant object while CipherscaleUsers or memberships still use it.
const TenantFinalizer = "iam.cipherscale.com/tenant-in-use"

// TenantReference names the tenant of a CipherscaleUser or CipherscaleGroupMembership.
type TenantReference struct {
	// kind is ClusterCipherscaleTenant (usable from the namespaces its namespaceSelector
	// selects) or CipherscaleTenant (usable only from its own namespace).
	// +required
	Kind TenantKind `json:"kind"`
	// name of the tenant object; a CipherscaleTenant is looked up in the referring object's
	// namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// SecretKeyReference names a key of a Secret in the tenant's own namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// key of the Secret's data that holds the API key.
	// +optional
	// +kubebuilder:default=api-key
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// NamespacedSecretKeyReference names a key of a Secret in a given namespace.
type NamespacedSecretKeyReference struct {
	// namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// key of the Secret's data that holds the API key.
	// +optional
	// +kubebuilder:default=api-key
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// UndeclaredUsersPolicy says what the operator does with tenant users that no object declares.
// +kubebuilder:validation:Enum=Ignore;Report;Deactivate;Delete
type UndeclaredUsersPolicy string

// Undeclared users policies.
const (
	UndeclaredUsersIgnore     UndeclaredUsersPolicy = "Ignore"
	UndeclaredUsersReport     UndeclaredUsersPolicy = "Report"
	UndeclaredUsersDeactivate UndeclaredUsersPolicy = "Deactivate"
	UndeclaredUsersDelete     UndeclaredUsersPolicy = "Delete"
)

// EmailPattern is an email address, or a pattern in which * matches any characters within
// the address, such as *@partner.com.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=254
// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
type EmailPattern = string

// UndeclaredUsersSpec is the tenant's policy for users that no object declares.
type UndeclaredUsersSpec struct {
	// policy: Ignore leaves them alone; Report counts them in status.undeclared; Deactivate
	// and Delete also deactivate or delete those undeclared for longer than gracePeriod,
	// within the removal budget.
	// +optional
	// +kubebuilder:default=Ignore
	Policy UndeclaredUsersPolicy `json:"policy,omitempty"`
	// exclude lists addresses and patterns never acted on.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	Exclude []EmailPattern `json:"exclude,omitempty"`
	// gracePeriod is how long a user must have been undeclared before they are acted on.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// RemovalBudgetSpec bounds the removals (deletes and deactivations) made in the tenant.
type RemovalBudgetSpec struct {
	// perHour is how many users may be removed or deactivated in any sliding hour; 0 means no
	// limit.
	// +optional
	// +kubebuilder:default=25
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	PerHour *int32 `json:"perHour,omitempty"`
}

// InvitationsSpec caps the invitations the tenant sends.
type InvitationsSpec struct {
	// maxPerDay is how many invitations one email address may be sent in any 24 hours, counting
	// the one a create sends and every resend, whichever object asked for them: deleting and
	// re-creating an object does not reset it. 0 means no cap.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxPerDay *int32 `json:"maxPerDay,omitempty"`
}

// AdoptionSpec says which namespaces may adopt tenant users the operator did not create.
type AdoptionSpec struct {
	// namespaceSelector selects the namespaces that may adopt. Omitted: none may.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// PrivilegedSpec says which roles and groups are privileged, and from which namespaces they
// (and Authoritative memberships) may be granted.
type PrivilegedSpec struct {
	// namespaceSelector selects the namespaces that may grant privileged roles and declare
	// Authoritative memberships. Omitted: none may.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// roles are the UUIDs of the privileged roles.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Roles []ID `json:"roles,omitempty"`
	// groups are the UUIDs of the privileged groups: a CipherscaleUser's spec.groups or a
	// membership's groupId that names one needs a namespace namespaceSelector selects. Omitted:
	// a group is privileged when the roles its members inherit through it include a privileged
	// role, and when the operator cannot tell (a group with no member, or whose members inherit
	// privileged roles through other groups too). A list, even empty: exactly these groups.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.lowerAscii() == x.lowerAscii()))",message="spec.privileged.groups must not repeat an id"
	Groups *[]ID `json:"groups,omitempty"`
}

// TenantSettings are the settings both tenant kinds share.
type TenantSettings struct {
	// url is the base URL of the tenant's Cipherscale API: https, on a host the operator allows
	// (its --api-hosts). Plain http is accepted here only for a loopback host, and used only when
	// the operator runs with --allow-insecure-http (a simulator or a test tenant).
	// +optional
	// +kubebuilder:default="https://public-api.cipherscale.com/qa"
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="spec.url must be an https URL (http only for a loopback host, and only where the operator allows insecure http)"
	URL string `json:"url,omitempty"`

	// requestsPerSecond is the rate of calls to this tenant's API.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	RequestsPerSecond *int32 `json:"requestsPerSecond,omitempty"`

	// burst is how many calls may go above requestsPerSecond at once.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Burst *int32 `json:"burst,omitempty"`

	// resyncInterval is how often the tenant is read again, and each object using it compared
	// with it, when nothing changed (jittered by 10%). Between 1s and 24h. Omitted: 10m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="spec.resyncInterval must be between 1s and 24h"
	ResyncInterval *metav1.Duration `json:"resyncInterval,omitempty"`

	// fullResyncInterval is how often the tenant is read whole. Between full reads, each
	// resync reads only the users changed since the last read (sorted by updatedAt, newest
	// first), and the total the API reports tells whether users were deleted (then the tenant
	// is read whole at once). A full read catches what an API that does not bump updatedAt
	// would hide. Between 1m and 24h; "0s" reads whole at every resync. Omitted: 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="spec.fullResyncInterval must be 0s, or between 1m and 24h"
	FullResyncInterval *metav1.Duration `json:"fullResyncInterval,omitempty"`

	// undeclaredUsers is the policy for tenant users that no object declares.
	// +optional
	UndeclaredUsers *UndeclaredUsersSpec `json:"undeclaredUsers,omitempty"`

	// removalBudget bounds the removals made in the tenant.
	// +optional
	// +kubebuilder:default={}
	RemovalBudget *RemovalBudgetSpec `json:"removalBudget,omitempty"`

	// defaultDeletionPolicy is the deletion policy of this tenant's CipherscaleUsers that set
	// none: Delete, Deactivate or Orphan.
	// +optional
	// +kubebuilder:default=Delete
	DefaultDeletionPolicy DeletionPolicy `json:"defaultDeletionPolicy,omitempty"`

	// privileged names the privileged roles and the namespaces that may grant them.
	// +optional
	Privileged *PrivilegedSpec `json:"privileged,omitempty"`

	// invitations caps the invitations sent to each email address.
	// +optional
	// +kubebuilder:default={}
	Invitations *InvitationsSpec `json:"invitations,omitempty"`
}

// ClusterCipherscaleTenantSpec is a Cipherscale tenant usable from the selected namespaces.
type ClusterCipherscaleTenantSpec struct {
	// apiKeySecretRef names the Secret key that holds the API key.
	// +required
	APIKeySecretRef NamespacedSecretKeyReference `json:"apiKeySecretRef"`

	// namespaceSelector selects the namespaces whose objects may use this tenant; {} selects
	// every namespace.
	// +required
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector"`

	// adoption says which namespaces may adopt tenant users the operator did not create.
	// +optional
	Adoption *AdoptionSpec `json:"adoption,omitempty"`

	TenantSettings `json:",inline"`
}

// CipherscaleTenantSpec is a Cipherscale tenant usable only from its own namespace.
type CipherscaleTenantSpec struct {
	// apiKeySecretRef names the Secret key, in this namespace, that holds the API key.
	// +required
	APIKeySecretRef SecretKeyReference `json:"apiKeySecretRef"`

	TenantSettings `json:",inline"`
}

// TenantUsers counts the tenant's users by state.
type TenantUsers struct {
	// total is the number of users in the tenant.
	Total int32 `json:"total"`
	// pending users have not accepted their invitation.
	Pending int32 `json:"pending"`
	// active users.
	Active int32 `json:"active"`
	// inactive (deactivated) users.
	Inactive int32 `json:"inactive"`
}

// UndeclaredStatus reports the tenant users that no object declares.
type UndeclaredStatus struct {
	// count of undeclared users.
	Count int32 `json:"count"`
	// emails of the first 20 undeclared users, sorted.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Emails []string `json:"emails,omitempty"`
}

// TenantRemovalBudgetStatus reports the tenant's removal budget.
type TenantRemovalBudgetStatus struct {
	// perHour is the budget in force: removals allowed in any sliding hour (0: no limit).
	PerHour int32 `json:"perHour"`
	// spent is how many removals the last hour spent.
	Spent int32 `json:"spent"`
	// waiting is how many removals wait for the budget: once one waited, the budget tripped
	// and every removal waits until a person acts.
	Waiting int32 `json:"waiting"`
	// allowance is how many of the removals an allowance (cipherscale.com/allow-removals)
	// released are not made yet. An allowance releases only the removals waiting when it is
	// granted: the rest of it lapses at once.
	// +optional
	Allowance int32 `json:"allowance,omitempty"`
	// allowRemovalsUsed is the value of the cipherscale.com/allow-removals annotation already
	// granted ("<n>", or "<n>@<namespace>" with cipherscale.com/allow-removals-namespace): the
	// same value is never granted twice.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	AllowRemovalsUsed string `json:"allowRemovalsUsed,omitempty"`
	// trippedAt is when a removal first had to wait: the tenant's removals stop until a person
	// acts (cipherscale.com/allow-removals, a higher perHour, or the waiting objects restored).
	// Absent: the budget has not tripped.
	// +optional
	TrippedAt *metav1.Time `json:"trippedAt,omitempty"`
	// waitingByNamespace counts the waiting removals of CipherscaleUsers by namespace, the
	// namespaces with the most first (at most 20); the removals of undeclared users are counted
	// in waiting only.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	WaitingByNamespace []NamespaceRemovals `json:"waitingByNamespace,omitempty"`
}

// NamespaceRemovals counts the removals of one namespace.
type NamespaceRemovals struct {
	// namespace of the CipherscaleUsers.
	Namespace string `json:"namespace"`
	// waiting is how many of their removals wait.
	Waiting int32 `json:"waiting"`
}

// RemovalHold is the record of the removal budget's trip and of the allowances granted, written
// by the operator before the removals it covers.
type RemovalHold struct {
	// trippedAt is when the budget tripped; absent when it has not.
	// +optional
	TrippedAt *metav1.Time `json:"trippedAt,omitempty"`
	// perHour is the budget in force when it tripped: only a higher one clears the trip.
	// +optional
	PerHour int32 `json:"perHour,omitempty"`
	// waiting are the removals that wait, oldest first: "user/<namespace>/<object uid>" for a
	// CipherscaleUser's, "undeclared/<user id>" for an undeclared user's.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Waiting []string `json:"waiting,omitempty"`
	// released are the removals an allowance released that are not made yet.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Released []string `json:"released,omitempty"`
	// allowRemovalsUsed is the allow-removals value already granted.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	AllowRemovalsUsed string `json:"allowRemovalsUsed,omitempty"`
}

// InvitationRecord is the invitations sent to one email address in the last 24 hours.
type InvitationRecord struct {
	// email is a hash of the address (base64url of the first 16 bytes of SHA-256 over the
	// tenant and the normalized address): the status holds no address.
	// +kubebuilder:validation:MaxLength=64
	Email string `json:"email"`
	// sentTimes are the times of the sends, oldest first.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	SentTimes []metav1.Time `json:"sentTimes"`
}

// RemovalMinute is how many removals the budget counted in one minute.
type RemovalMinute struct {
	// minute is the start of the minute (UTC).
	Minute metav1.Time `json:"minute"`
	// count is how many removals it counted in that minute.
	// +kubebuilder:validation:Minimum=1
	Count int32 `json:"count"`
}

// TenantStatus is what the operator observed of a tenant.
type TenantStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready (the key works: the last list read succeeded) and Stalled
	// (InvalidSecret, Unauthorized, InvalidURL), in the kstatus convention.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// lastSyncTime is when the tenant's users were last read.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// users counts the tenant's users by state, as last read.
	// +optional
	Users *TenantUsers `json:"users,omitempty"`
	// declared is how many tenant users some object of this tenant declares.
	// +optional
	Declared *int32 `json:"declared,omitempty"`
	// undeclared reports the users no object declares (policy Report and above).
	// +optional
	Undeclared *UndeclaredStatus `json:"undeclared,omitempty"`
	// removalBudget reports the tenant's removal budget.
	// +optional
	RemovalBudget *TenantRemovalBudgetStatus `json:"removalBudget,omitempty"`
	// removalsByMinute records the removals the budget counted in the last hour, by minute:
	// the operator writes it before each removal's call and reads it at its start, so that a
	// restart does not give the tenant a fresh hour. Written by the budget alone.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=62
	RemovalsByMinute []RemovalMinute `json:"removalsByMinute,omitempty"`
	// removalHold records the removal budget's trip, the removals that wait and those an
	// allowance released: written by the budget alone, before the removals it covers, and read
	// at the operator's start, so that neither a restart nor a new leader clears a trip or
	// repeats a grant.
	// +optional
	RemovalHold *RemovalHold `json:"removalHold,omitempty"`
	// invitationsSent records, per email address (hashed), the invitations sent in the last 24
	// hours: written before each send and read at the operator's start, so that the cap of
	// spec.invitations.maxPerDay holds through deletes, re-creates and restarts. Oldest
	// records are dropped past 2000 addresses.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2000
	InvitationsSent []InvitationRecord `json:"invitationsSent,omitempty"`
	// references is how many CipherscaleUsers and memberships use this tenant.
	// +optional
	References int32 `json:"references,omitempty"`
}

// ClusterCipherscaleTenant is a Cipherscale tenant that objects of the namespaces it selects
// may use.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ccst,categories=cipherscale
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Users",type=integer,JSONPath=`.status.users.total`
// +kubebuilder:printcolumn:name="Declared",type=integer,JSONPath=`.status.declared`
// +kubebuilder:printcolumn:name="Undeclared",type=integer,JSONPath=`.status.undeclared.count`
// +kubebuilder:printcolumn:name="Removals/h",type=integer,JSONPath=`.status.removalBudget.perHour`
// +kubebuilder:printcolumn:name="Spent",type=integer,JSONPath=`.status.removalBudget.spent`
// +kubebuilder:printcolumn:name="Waiting",type=integer,JSONPath=`.status.removalBudget.waiting`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterCipherscaleTenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   ClusterCipherscaleTenantSpec `json:"spec"`
	Status TenantStatus                 `json:"status,omitempty"`
}

// ClusterCipherscaleTenantList is a list of ClusterCipherscaleTenants.
// +kubebuilder:object:root=true
type ClusterCipherscaleTenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterCipherscaleTenant `json:"items"`
}

// CipherscaleTenant is a Cipherscale tenant that only objects of its own namespace may use.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cst,categories=cipherscale
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Users",type=integer,JSONPath=`.status.users.total`
// +kubebuilder:printcolumn:name="Declared",type=integer,JSONPath=`.status.declared`
// +kubebuilder:printcolumn:name="Undeclared",type=integer,JSONPath=`.status.undeclared.count`
// +kubebuilder:printcolumn:name="Removals/h",type=integer,JSONPath=`.status.removalBudget.perHour`
// +kubebuilder:printcolumn:name="Spent",type=integer,JSONPath=`.status.removalBudget.spent`
// +kubebuilder:printcolumn:name="Waiting",type=integer,JSONPath=`.status.removalBudget.waiting`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CipherscaleTenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   CipherscaleTenantSpec `json:"spec"`
	Status TenantStatus          `json:"status,omitempty"`
}

// CipherscaleTenantList is a list of CipherscaleTenants.
// +kubebuilder:object:root=true
type CipherscaleTenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CipherscaleTenant `json:"items"`
}

// SecretRef returns where the tenant's API key is: the Secret's namespace, name and key.
func (t *ClusterCipherscaleTenant) SecretRef() (namespace, name, key string) {
	r := t.Spec.APIKeySecretRef
	return r.Namespace, r.Name, r.Key
}

// SecretRef returns where the tenant's API key is: the Secret's namespace (the tenant's own),
// name and key.
func (t *CipherscaleTenant) SecretRef() (namespace, name, key string) {
	r := t.Spec.APIKeySecretRef
	return t.Namespace, r.Name, r.Key
}

// Settings returns the settings both kinds share.
func (t *ClusterCipherscaleTenant) Settings() *TenantSettings { return &t.Spec.TenantSettings }

// Settings returns the settings both kinds share.
func (t *CipherscaleTenant) Settings() *TenantSettings { return &t.Spec.TenantSettings }

// GetTenantStatus returns the status both kinds share.
func (t *ClusterCipherscaleTenant) GetTenantStatus() *TenantStatus { return &t.Status }

// GetTenantStatus returns the status both kinds share.
func (t *CipherscaleTenant) GetTenantStatus() *TenantStatus { return &t.Status }

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &ClusterCipherscaleTenant{}, &ClusterCipherscaleTenantList{},
			&CipherscaleTenant{}, &CipherscaleTenantList{})
		return nil
	})
}
