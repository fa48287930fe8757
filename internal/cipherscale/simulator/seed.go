package simulator

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// Seed is a set of roles, groups and users to preload, as the --seed file of hack/cipherscale-sim
// holds it; the JSON names are those of the /_sim/ bodies.
type Seed struct {
	Roles  []RoleSeed  `json:"roles,omitempty"`
	Groups []GroupSeed `json:"groups,omitempty"`
	Users  []UserSeed  `json:"users,omitempty"`
}

// Seeded is what ApplySeed added.
type Seeded struct {
	Roles  []cipherscale.Role
	Groups []cipherscale.Group
	Users  []cipherscale.User
}

// ApplySeed adds the roles, then the groups, then the users of a seed, stopping at the first error
// (what was added before it stays).
func (s *Server) ApplySeed(seed Seed) (Seeded, error) {
	var out Seeded
	for i, r := range seed.Roles {
		role, err := s.AddRole(r)
		if err != nil {
			return out, fmt.Errorf("role %d (%s): %w", i, r.Name, err)
		}
		out.Roles = append(out.Roles, role)
	}
	for i, g := range seed.Groups {
		group, err := s.AddGroup(g)
		if err != nil {
			return out, fmt.Errorf("group %d (%s): %w", i, g.Name, err)
		}
		out.Groups = append(out.Groups, group)
	}
	for i, u := range seed.Users {
		user, err := s.AddUser(u)
		if err != nil {
			return out, fmt.Errorf("user %d: %w", i, err)
		}
		out.Users = append(out.Users, user)
	}
	return out, nil
}

// The fixed ids of DemoSeed.
const (
	DemoRoleAdminID         = "11111111-1111-4111-8111-111111111111"
	DemoRoleSupportID       = "22222222-2222-4222-8222-222222222222"
	DemoRoleAuditorID       = "33333333-3333-4333-8333-333333333333"
	DemoRoleBillingID       = "44444444-4444-4444-8444-444444444444"
	DemoGroupEngineeringID  = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	DemoGroupContractorsID  = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	DemoGroupSupportID      = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
	DemoOwnerEmail          = "owner@example.com"
	demoRoleTypeDescription = " role of the demo tenant"
)

// DemoSeed is a small fixed tenant: four roles, three groups (Engineering inherits Auditor,
// Support inherits Support, Contractors none) and an active owner holding Admin.
func DemoSeed() Seed {
	return Seed{
		Roles: []RoleSeed{
			{ID: DemoRoleAdminID, Name: "Admin", Type: cipherscale.RoleTypeAdmin, Description: "Admin" + demoRoleTypeDescription},
			{ID: DemoRoleSupportID, Name: "Support", Type: cipherscale.RoleTypeSupport, Description: "Support" + demoRoleTypeDescription},
			{ID: DemoRoleAuditorID, Name: "Auditor", Type: cipherscale.RoleTypeAuditor, Description: "Auditor" + demoRoleTypeDescription},
			{ID: DemoRoleBillingID, Name: "Billing", Type: cipherscale.RoleTypeBilling, Description: "Billing" + demoRoleTypeDescription},
		},
		Groups: []GroupSeed{
			{ID: DemoGroupEngineeringID, Name: "Engineering", Description: "Software engineering team", Roles: []string{DemoRoleAuditorID}},
			{ID: DemoGroupContractorsID, Name: "Contractors", Description: "External contractors", Roles: []string{}},
			{ID: DemoGroupSupportID, Name: "Support", Description: "Customer support team", Roles: []string{DemoRoleSupportID}},
		},
		Users: []UserSeed{
			{Email: DemoOwnerEmail, Status: cipherscale.StatusActive, IsOwner: true, FirstName: "Tenant", LastName: "Owner",
				Roles: []string{DemoRoleAdminID}},
		},
	}
}

// RoleSeed describes a role to add to the tenant. ID is generated (a uuid) when empty; Type
// defaults to DEFAULT when empty. The JSON names are those of POST /_sim/roles.
type RoleSeed struct {
	ID          string               `json:"id,omitempty"`
	Name        string               `json:"name"`
	Description string               `json:"description,omitempty"`
	Type        cipherscale.RoleType `json:"type"`
}

// GroupSeed describes a group to add to the tenant. Roles are role ids the members inherit. The
// JSON names are those of POST /_sim/groups.
type GroupSeed struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Roles       []string `json:"roles"`
}

// UserSeed describes a user made "by hand" (for example the tenant owner). Status defaults to
// pending; a user seeded active or inactive counts as having accepted the invitation. Roles are
// direct role ids, Groups group ids. The JSON names are those of POST /_sim/users.
type UserSeed struct {
	Email     string             `json:"email"`
	Status    cipherscale.Status `json:"status,omitempty"`
	IsOwner   bool               `json:"isOwner,omitempty"`
	FirstName string             `json:"firstName,omitempty"`
	LastName  string             `json:"lastName,omitempty"`
	Image     string             `json:"image,omitempty"`
	Roles     []string           `json:"roles,omitempty"`
	Groups    []string           `json:"groups,omitempty"`
}

func (t *tenant) addRole(r RoleSeed) (cipherscale.Role, error) {
	if strings.TrimSpace(r.Name) == "" {
		return cipherscale.Role{}, newErr(http.StatusBadRequest, "role name is required")
	}
	if r.Type == "" {
		r.Type = cipherscale.RoleTypeDefault
	}
	if !validRoleType(r.Type) {
		return cipherscale.Role{}, newErr(http.StatusBadRequest,
			"role type %q is not one of OWNER ADMIN DEFAULT BASIC BILLING AUDITOR SUPPORT", r.Type)
	}
	if r.ID == "" {
		r.ID = newID()
	} else if !validID(r.ID) {
		return cipherscale.Role{}, newErr(http.StatusBadRequest, "role id %q is not a valid id", r.ID)
	}
	if _, ok := t.roles[r.ID]; ok {
		return cipherscale.Role{}, newErr(http.StatusConflict, "role %s exists", r.ID)
	}
	now := t.tick()
	ro := &role{id: r.ID, name: r.Name, description: r.Description, typ: r.Type,
		deleteable: r.Type != cipherscale.RoleTypeOwner, createdAt: now, updatedAt: now}
	t.roles[ro.id] = ro
	t.roleOrder = append(t.roleOrder, ro.id)
	return ro.api(), nil
}

func (t *tenant) addGroup(g GroupSeed) (cipherscale.Group, error) {
	if strings.TrimSpace(g.Name) == "" {
		return cipherscale.Group{}, newErr(http.StatusBadRequest, "group name is required")
	}
	if g.ID == "" {
		g.ID = newID()
	} else if !validID(g.ID) {
		return cipherscale.Group{}, newErr(http.StatusBadRequest, "group id %q is not a valid id", g.ID)
	}
	if _, ok := t.groups[g.ID]; ok {
		return cipherscale.Group{}, newErr(http.StatusConflict, "group %s exists", g.ID)
	}
	for _, rid := range g.Roles {
		if _, ok := t.roles[rid]; !ok {
			return cipherscale.Group{}, newErr(http.StatusNotFound, "unknown role %q", rid)
		}
	}
	now := t.tick()
	gr := &group{id: g.ID, name: g.Name, description: g.Description, roles: dedupe(g.Roles),
		createdAt: now, updatedAt: now}
	t.groups[gr.id] = gr
	t.groupOrder = append(t.groupOrder, gr.id)
	t.changed()
	return gr.api(), nil
}

func (t *tenant) addUser(s UserSeed) (cipherscale.User, error) {
	if !validEmail(s.Email) {
		return cipherscale.User{}, &apiError{status: http.StatusBadRequest, code: "bad_request",
			msg: "invalid email", emails: []string{s.Email}}
	}
	status := s.Status.Normalized()
	if status == "" {
		status = cipherscale.StatusPending
	}
	if !status.Known() {
		return cipherscale.User{}, newErr(http.StatusBadRequest, "status %q is not one of pending, active, inactive", s.Status)
	}
	norm := cipherscale.NormalizeEmail(s.Email)
	if _, ok := t.byEmail[norm]; ok {
		return cipherscale.User{}, &apiError{status: http.StatusConflict, code: "conflict",
			msg: "email exists", emails: []string{s.Email}}
	}
	for _, rid := range s.Roles {
		if _, ok := t.roles[rid]; !ok {
			return cipherscale.User{}, newErr(http.StatusNotFound, "unknown role %q", rid)
		}
	}
	for _, gid := range s.Groups {
		if _, ok := t.groups[gid]; !ok {
			return cipherscale.User{}, newErr(http.StatusNotFound, "unknown group %q", gid)
		}
	}
	now := t.tick()
	u := &user{
		id: newID(), email: s.Email, norm: norm, status: status,
		accepted: status != cipherscale.StatusPending, isOwner: s.IsOwner,
		firstName: s.FirstName, lastName: s.LastName, image: s.Image,
		roles: dedupe(s.Roles), groups: dedupe(s.Groups), createdAt: now, updatedAt: now,
	}
	t.insert(u)
	return t.render(u), nil
}

func (t *tenant) seedUsers(n int, pattern string) error {
	if n < 0 {
		return newErr(http.StatusBadRequest, "negative count %d", n)
	}
	emails := make([]string, n)
	norms := make([]string, n)
	seen := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		e := fmt.Sprintf(pattern, i+1)
		if !validEmail(e) {
			return newErr(http.StatusBadRequest, "pattern %q makes the invalid email %q", pattern, e)
		}
		norm := cipherscale.NormalizeEmail(e)
		if _, ok := t.byEmail[norm]; ok || seen[norm] {
			return newErr(http.StatusConflict, "pattern %q makes the email %q twice", pattern, e)
		}
		seen[norm] = true
		emails[i], norms[i] = e, norm
	}
	if cap(t.users)-len(t.users) < n {
		grown := make([]*user, len(t.users), len(t.users)+n)
		copy(grown, t.users)
		t.users = grown
	}
	// One buffered random source for all ids, and one clock reading spread a nanosecond apart.
	rnd := bufio.NewReaderSize(rand.Reader, 16*1024)
	now := t.tick()
	for i := 0; i < n; i++ {
		id, err := uuid.NewRandomFromReader(rnd)
		if err != nil {
			return newErr(http.StatusInternalServerError, "generating an id: %v", err)
		}
		ts := now.Add(time.Duration(i))
		t.insert(&user{id: id.String(), email: emails[i], norm: norms[i],
			status: cipherscale.StatusPending, roles: []string{}, groups: []string{},
			createdAt: ts, updatedAt: ts})
	}
	if n > 0 {
		t.lastTime = now.Add(time.Duration(n - 1))
	}
	return nil
}

// AddRole adds a role to the tenant. The id is generated when empty; a taken id is ErrConflict, an
// empty name or an unknown type ErrInvalid.
func (s *Server) AddRole(r RoleSeed) (cipherscale.Role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.addRole(r)
}

// AddGroup adds a group whose members inherit the given roles. An unknown role is ErrNotFound.
func (s *Server) AddGroup(g GroupSeed) (cipherscale.Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.addGroup(g)
}

// AddUser adds a user made by hand (such as the tenant owner), without sending an invitation. A
// duplicate email (case-insensitive) is ErrConflict; an unknown role or group ErrNotFound.
func (s *Server) AddUser(u UserSeed) (cipherscale.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.addUser(u)
}

// SeedUsers adds n pending users quickly, with the emails fmt.Sprintf(emailPattern, i) for i from
// 1 to n (e.g. "user%d@example.com"), no roles, no groups, and no invitation counted. It adds
// nothing when one of the emails is invalid or taken.
func (s *Server) SeedUsers(n int, emailPattern string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.seedUsers(n, emailPattern)
}
