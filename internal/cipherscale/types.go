package cipherscale

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// DefaultBaseURL is the base URL the vendor's reference documents.
const DefaultBaseURL = "https://public-api.cipherscale.com/qa"

// MaxPageSize is the largest page the list endpoint serves (a larger limit is served as this).
const MaxPageSize = 100

// MaxCreateBatch is the largest number of users one create request may carry.
const MaxCreateBatch = 100

// Status is the state of a user account as the API reports it.
type Status string

// The status values the contract knows. Anything else is reported as it is, never guessed at.
const (
	StatusPending  Status = "pending"
	StatusActive   Status = "active"
	StatusInactive Status = "inactive"
)

// Normalized returns the status lower-cased, so that "Active" and "active" compare equal.
func (s Status) Normalized() Status { return Status(strings.ToLower(strings.TrimSpace(string(s)))) }

// Known reports whether the status is one of pending, active or inactive (in any case).
func (s Status) Known() bool {
	switch s.Normalized() {
	case StatusPending, StatusActive, StatusInactive:
		return true
	}
	return false
}

// RoleType is the predefined type of a role.
type RoleType string

// The role types of the reference.
const (
	RoleTypeOwner   RoleType = "OWNER"
	RoleTypeAdmin   RoleType = "ADMIN"
	RoleTypeDefault RoleType = "DEFAULT"
	RoleTypeBasic   RoleType = "BASIC"
	RoleTypeBilling RoleType = "BILLING"
	RoleTypeAuditor RoleType = "AUDITOR"
	RoleTypeSupport RoleType = "SUPPORT"
)

// Role is a role of the tenant.
type Role struct {
	ID          string     `json:"id"`
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	UpdatedAt   *time.Time `json:"updatedAt,omitempty"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Deleteable  bool       `json:"deleteable"`
	Type        RoleType   `json:"type,omitempty"`
}

// Group is a group of the tenant; its members inherit its roles.
type Group struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Description string     `json:"description,omitempty"`
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	UpdatedAt   *time.Time `json:"updatedAt,omitempty"`
}

// DeviceUser is the short form of a user carried by a device.
type DeviceUser struct {
	ID             string     `json:"id,omitempty"`
	Email          string     `json:"email,omitempty"`
	FirstName      string     `json:"firstName,omitempty"`
	LastName       string     `json:"lastName,omitempty"`
	LastConnection *time.Time `json:"lastConnection,omitempty"`
}

// Device is a device of a user. The operator only reads it.
type Device struct {
	ID             string          `json:"id,omitempty"`
	CreatedAt      *time.Time      `json:"createdAt,omitempty"`
	UpdatedAt      *time.Time      `json:"updatedAt,omitempty"`
	Name           string          `json:"name,omitempty"`
	Active         bool            `json:"active"`
	LastConnection *time.Time      `json:"lastConnection,omitempty"`
	Status         string          `json:"status,omitempty"`
	User           *DeviceUser     `json:"user,omitempty"`
	HardwareID     string          `json:"hardwareId,omitempty"`
	Posture        json.RawMessage `json:"posture,omitempty"`
	AppVersion     string          `json:"appVersion,omitempty"`
}

// User is a user of the tenant. Roles holds the user's direct role assignments only; roles
// inherited through groups are read with UserRoles.
type User struct {
	ID             string     `json:"id"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	LastConnection *time.Time `json:"lastConnection,omitempty"`
	Email          string     `json:"email,omitempty"`
	Status         Status     `json:"status"`
	FirstName      string     `json:"firstName,omitempty"`
	LastName       string     `json:"lastName,omitempty"`
	IsOwner        bool       `json:"isOwner"`
	MaxDevices     *float64   `json:"maxDevices"`
	Image          string     `json:"image,omitempty"`
	Roles          RoleList   `json:"roles"`
	Groups         []Group    `json:"groups"`
	Devices        []Device   `json:"devices"`
}

// TenantOwner reports whether u is the tenant owner: by its flag, or a direct role of type
// OWNER. Every check of the owner goes through it, so that two tests never disagree.
func (u *User) TenantOwner() bool {
	if u == nil {
		return false
	}
	if u.IsOwner {
		return true
	}
	for _, r := range u.Roles {
		if strings.EqualFold(string(r.Type), string(RoleTypeOwner)) {
			return true
		}
	}
	return false
}

// RoleIDs returns the ids of the user's direct roles.
func (u User) RoleIDs() []string {
	ids := make([]string, 0, len(u.Roles))
	for _, r := range u.Roles {
		ids = append(ids, r.ID)
	}
	return ids
}

// GroupIDs returns the ids of the user's groups.
func (u User) GroupIDs() []string {
	ids := make([]string, 0, len(u.Groups))
	for _, g := range u.Groups {
		ids = append(ids, g.ID)
	}
	return ids
}

// RoleList is a list of roles that also accepts a single role object where a list was expected,
// as the reference's sample of GET /tenants/users/{id}/roles shows.
type RoleList []Role

// UnmarshalJSON accepts a list, a single object, or null.
func (l *RoleList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	case b[0] == '{':
		var r Role
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		*l = RoleList{r}
		return nil
	default:
		var rs []Role
		if err := json.Unmarshal(b, &rs); err != nil {
			return err
		}
		*l = rs
		return nil
	}
}

// Page is one page of the user list.
type Page struct {
	Data        []User `json:"data"`
	Total       int    `json:"total"`
	Page        int    `json:"page"`
	Limit       int    `json:"limit"`
	HasNext     bool   `json:"hasNext"`
	HasPrevious bool   `json:"hasPrevious"`
}

// NewUser is one item of a create request. Groups is required by the API and sent as [] when empty.
type NewUser struct {
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
}

// MarshalJSON always sends groups, as [] when empty.
func (n NewUser) MarshalJSON() ([]byte, error) {
	groups := n.Groups
	if groups == nil {
		groups = []string{}
	}
	return json.Marshal(struct {
		Email  string   `json:"email"`
		Groups []string `json:"groups"`
	}{n.Email, groups})
}

// ProfileUpdate is the body of PUT /tenants/users/{id}. A nil field is left unchanged.
type ProfileUpdate struct {
	FirstName *string `json:"firstName,omitempty"`
	LastName  *string `json:"lastName,omitempty"`
	Image     *string `json:"image,omitempty"`
}

// RolesPatch is the body of PATCH /tenants/users/{id}/roles. Both lists are always sent.
type RolesPatch struct {
	AddedRoles   []string `json:"addedRoles"`
	RemovedRoles []string `json:"removedRoles"`
}

// MarshalJSON always sends both lists, as [] when empty.
func (p RolesPatch) MarshalJSON() ([]byte, error) {
	a, r := p.AddedRoles, p.RemovedRoles
	if a == nil {
		a = []string{}
	}
	if r == nil {
		r = []string{}
	}
	return json.Marshal(struct {
		AddedRoles   []string `json:"addedRoles"`
		RemovedRoles []string `json:"removedRoles"`
	}{a, r})
}

// GroupsAdd is the body of POST /tenants/users/{id}/groups (an assumption of the contract page,
// point 5: the reference shows no body).
type GroupsAdd struct {
	Groups []string `json:"groups"`
}

// RoleFilter selects which roles UserRoles returns.
type RoleFilter int

// The filters of GET /tenants/users/{id}/roles.
const (
	// AllRoles returns direct and inherited roles.
	AllRoles RoleFilter = iota
	// DirectRolesOnly returns the user's direct roles (rolesOnly=true).
	DirectRolesOnly
	// GroupRolesOnly returns the roles inherited through groups (groupsOnly=true).
	GroupRolesOnly
)

// ErrorBody is the JSON body of an error response. Emails names the offending items of a refused
// bulk create.
type ErrorBody struct {
	Message string   `json:"message,omitempty"`
	Code    string   `json:"code,omitempty"`
	Emails  []string `json:"emails,omitempty"`
}

// NormalizeEmail is the form in which emails are compared: the API treats them case-insensitively.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// NormalizeID is the form in which role, group and user ids are compared: UUIDs are
// case-insensitive.
func NormalizeID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }
