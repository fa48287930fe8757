package cipherscale

import "context"

// API is every call of the Users section of the Cipherscale API. The controllers depend on this
// interface, so tests can wrap or replace the HTTP client.
type API interface {
	// ListUsersPage reads one page (endpoint 1). limit is capped at MaxPageSize by the service.
	ListUsersPage(ctx context.Context, limit, offset int, sort ...string) (*Page, error)
	// ListUsers reads every user across pages of MaxPageSize, in creation order. It never
	// returns a list missing a user that existed during the whole read: a list that shifted
	// is read again, a bounded number of times (then ErrListChanged).
	ListUsers(ctx context.Context) ([]User, error)
	// CreateUsers creates users (endpoint 2), sending batches of at most MaxCreateBatch. The
	// result holds the created users in request order. A refused batch stops the call with an
	// *APIError naming the offending emails; the users of earlier batches are returned with it.
	// It is never retried blindly: see point 7 of the contract.
	CreateUsers(ctx context.Context, users []NewUser) ([]User, error)
	// GetUser reads one user (endpoint 3).
	GetUser(ctx context.Context, id string) (*User, error)
	// UpdateProfile writes the profile fields that are set (endpoint 4).
	UpdateProfile(ctx context.Context, id string, p ProfileUpdate) (*User, error)
	// DeleteUser deletes a user (endpoint 5). A user already gone (404) is success.
	DeleteUser(ctx context.Context, id string) error
	// DeactivateUser deactivates a user (endpoint 6).
	DeactivateUser(ctx context.Context, id string) (*User, error)
	// ReactivateUser reactivates a user (endpoint 7).
	ReactivateUser(ctx context.Context, id string) (*User, error)
	// ResendInvitation resends the invitation of a pending user (endpoint 8).
	ResendInvitation(ctx context.Context, id string) error
	// UserRoles reads a user's roles (endpoint 9).
	UserRoles(ctx context.Context, id string, filter RoleFilter) ([]Role, error)
	// PatchRoles adds and removes direct roles in one call (endpoint 10).
	PatchRoles(ctx context.Context, id string, p RolesPatch) error
	// AddToGroups adds a user to groups (endpoint 11).
	AddToGroups(ctx context.Context, id string, groupIDs []string) error
	// RemoveFromGroup removes a user from a group (endpoint 12).
	RemoveFromGroup(ctx context.Context, id, groupID string) error
}

// Route templates, as the simulator's fault rules and statistics name them.
const (
	RouteListUsers        = "GET /tenants/users"
	RouteCreateUsers      = "POST /tenants/users"
	RouteGetUser          = "GET /tenants/users/{id}"
	RouteUpdateProfile    = "PUT /tenants/users/{id}"
	RouteDeleteUser       = "DELETE /tenants/users/{id}"
	RouteDeactivateUser   = "PATCH /tenants/users/{id}/deactivate"
	RouteReactivateUser   = "POST /tenants/users/{id}/reactivate"
	RouteResendInvitation = "POST /tenants/users/{id}/invite"
	RouteUserRoles        = "GET /tenants/users/{id}/roles"
	RoutePatchRoles       = "PATCH /tenants/users/{id}/roles"
	RouteAddToGroups      = "POST /tenants/users/{id}/groups"
	RouteRemoveFromGroup  = "DELETE /tenants/users/{id}/groups/{groupId}"
)
