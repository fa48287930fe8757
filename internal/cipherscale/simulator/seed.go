package simulator

import (
	"fmt"

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
