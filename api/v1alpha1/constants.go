package v1alpha1

// Condition types. They follow the kstatus convention, so that kubectl wait, Flux and Argo CD
// read them without configuration.
const (
	// ConditionReady is True when the tenant matches the spec.
	ConditionReady = "Ready"
	// ConditionReconciling is True while changes are being applied, and absent otherwise.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when a person must act, and absent otherwise.
	ConditionStalled = "Stalled"
)

// Condition reasons.
const (
	ReasonUpToDate         = "UpToDate"
	ReasonCreating         = "Creating"
	ReasonUpdating         = "Updating"
	ReasonDeleting         = "Deleting"
	ReasonPaused           = "Paused"
	ReasonInvalidReference = "InvalidReference"
	ReasonEmailConflict    = "EmailConflict"
	ReasonGroupConflict    = "GroupConflict"
	ReasonAlreadyExists    = "AlreadyExists"
	ReasonOwnerProtected   = "OwnerProtected"
	ReasonUnauthorized     = "Unauthorized"
	ReasonAPIUnavailable   = "APIUnavailable"
	ReasonWaitingForUser   = "WaitingForUser"
	ReasonUserNotFound     = "UserNotFound"
	ReasonAPIError         = "APIError"
	ReasonProgressing      = "Progressing"
)

// Condition reasons about the identity of a CipherscaleUser's tenant user.
const (
	// ReasonAmbiguousEmail: the tenant holds several users whose emails differ only in case;
	// the operator never picks one.
	ReasonAmbiguousEmail = "AmbiguousEmail"
	// ReasonEmailMismatch: the tenant user the object recorded (cipherscale.com/user-id) has
	// another email; the operator never swaps one user for another.
	ReasonEmailMismatch = "EmailMismatch"
)

// Condition reasons for answers of the Cipherscale API that the operator refuses or may not act on.
const (
	// ReasonForbidden: the API refused a call with 403 (the key lacks a permission).
	ReasonForbidden = "Forbidden"
	// ReasonAPIInvalidResponse: the API sent an answer the operator refuses (malformed, or past
	// the client's limits: ids that are not UUIDs, strings that are not UTF-8, an unknown status,
	// a page or a list larger than allowed). Retried with backoff.
	ReasonAPIInvalidResponse = "APIInvalidResponse"
)

// Condition reason and annotations of the removal budget (docs: README "The removal budget").
const (
	// ReasonRemovalBudgetExceeded: the delete or deactivate call this object needs would overspend
	// its tenant's removal budget; it waits, its finalizer held, until the budget allows it or a
	// person allows more removals.
	ReasonRemovalBudgetExceeded = "RemovalBudgetExceeded"
	// AnnotationAllowRemovals, set to a whole number n on a tenant object, releases at most n of
	// the removals that wait for its removal budget when it is granted, and nothing else (the
	// rest of n lapses), once per value.
	AnnotationAllowRemovals = "cipherscale.com/allow-removals"
	// AnnotationAllowRemovalsNamespace, set next to AnnotationAllowRemovals on a tenant object,
	// limits the allowance to the waiting removals of CipherscaleUsers of that namespace: the
	// offboarding of one team is released while another namespace's mass deletion stays held.
	AnnotationAllowRemovalsNamespace = "cipherscale.com/allow-removals-namespace"
)

// Condition and event reasons of the trust rules: a namespace is not the tenant.
const (
	// ReasonAdoptionNotAllowed: the tenant already has a user with the email that the operator
	// did not create for the object, and the object's namespace may not adopt users.
	ReasonAdoptionNotAllowed = "AdoptionNotAllowed"
	// ReasonNotAllowed: the object asks for a privileged role, a privileged group, an
	// Authoritative membership or a member another namespace manages, which its namespace may
	// not.
	ReasonNotAllowed = "NotAllowed"
	// EventInvitationDeferred: an invitation was not sent because the user had the most
	// invitations a day allows; the event says until when.
	EventInvitationDeferred = "InvitationDeferred"
	// MemberStateOwnerProtected: the member is the tenant owner, whose groups the operator
	// never changes.
	MemberStateOwnerProtected MemberState = "OwnerProtected"
	// MemberStateNotAllowed: the membership may not act on the member: a user another
	// namespace manages, or a person its namespace may not adopt. Nothing is written for it,
	// and nothing of that user is read into the status.
	MemberStateNotAllowed MemberState = "NotAllowed"
)

// Event reasons.
const (
	EventCreated          = "Created"
	EventAdopted          = "Adopted"
	EventRolesUpdated     = "RolesUpdated"
	EventGroupsUpdated    = "GroupsUpdated"
	EventProfileUpdated   = "ProfileUpdated"
	EventDeactivated      = "Deactivated"
	EventReactivated      = "Reactivated"
	EventInvitationResent = "InvitationResent"
	EventDeleted          = "Deleted"
	EventOrphaned         = "Orphaned"
	EventDriftCorrected   = "DriftCorrected"
	EventMembersUpdated   = "MembersUpdated"
)

// Annotations a person sets on a CipherscaleUser.
const (
	// AnnotationResendInvitation resends the invitation of a pending user once per new value.
	AnnotationResendInvitation = "cipherscale.com/resend-invitation"
	// AnnotationPaused set to "true" stops every write for the object; status still reports drift.
	AnnotationPaused = "cipherscale.com/paused"
)

// Annotations the operator writes on a CipherscaleUser: the identity of its tenant user. They
// live in metadata, which survives what status does not (a backup and restore, a status reset,
// a move between clusters).
const (
	// AnnotationUserID is the id of the tenant user the object manages, recorded as soon as it
	// is known (the create's answer, or the adoption). status.id mirrors it.
	AnnotationUserID = "cipherscale.com/user-id"
	// AnnotationCreatePending records, as an RFC 3339 time, that a create was about to be sent;
	// it is removed when the id is recorded. An object with this mark that finds a user with its
	// email made that user itself, whatever its adoptionPolicy.
	AnnotationCreatePending = "cipherscale.com/create-pending"
	// AnnotationUserIDProof proves that the operator itself recorded AnnotationUserID for this
	// object: "v1:" and an HMAC over the tenant, the object's namespace, kind and name, and the
	// id, keyed by a key derived from the tenant's API key. Copied to another object or written
	// by hand, it does not verify. It survives a restore, which status does not.
	AnnotationUserIDProof = "cipherscale.com/user-id-proof"
)

// Finalizer holds an object until its deletion policy has been carried out in the tenant.
const Finalizer = "iam.cipherscale.com/finalizer"

// DeletionPolicy says what happens in the tenant when the object is deleted.
// +kubebuilder:validation:Enum=Delete;Deactivate;Orphan
type DeletionPolicy string

// Deletion policies of a CipherscaleUser.
const (
	DeletionPolicyDelete     DeletionPolicy = "Delete"
	DeletionPolicyDeactivate DeletionPolicy = "Deactivate"
	DeletionPolicyOrphan     DeletionPolicy = "Orphan"
)

// AdoptionPolicy says whether a user that already exists in the tenant is taken over.
// +kubebuilder:validation:Enum=IfExists;Never
type AdoptionPolicy string

// Adoption policies.
const (
	AdoptionPolicyIfExists AdoptionPolicy = "IfExists"
	AdoptionPolicyNever    AdoptionPolicy = "Never"
)

// MembershipPolicy says whether a membership only adds members or also removes undeclared ones.
// +kubebuilder:validation:Enum=Additive;Authoritative
type MembershipPolicy string

// Membership policies.
const (
	MembershipPolicyAdditive      MembershipPolicy = "Additive"
	MembershipPolicyAuthoritative MembershipPolicy = "Authoritative"
)

// MembershipDeletionPolicy says what happens to a membership's pairs when it is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type MembershipDeletionPolicy string

// Membership deletion policies.
const (
	MembershipDeletionPolicyDelete MembershipDeletionPolicy = "Delete"
	MembershipDeletionPolicyOrphan MembershipDeletionPolicy = "Orphan"
)

// UserState is the state of the tenant user, as status.state reports it.
type UserState string

// User states. A value the API reports that is none of these is shown as the API gave it.
const (
	UserStatePending  UserState = "Pending"
	UserStateActive   UserState = "Active"
	UserStateInactive UserState = "Inactive"
)

// MemberState is the state of one member of a CipherscaleGroupMembership.
type MemberState string

// Member states.
const (
	MemberStateMember         MemberState = "Member"
	MemberStateWaitingForUser MemberState = "WaitingForUser"
	MemberStateUserNotFound   MemberState = "UserNotFound"
)
