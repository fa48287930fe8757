// Privileged roles and groups: what an object of a namespace the tenant's trust policy does not
// privilege may not grant or remove.

package decide

import (
	"context"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// PrivilegedGroup reports whether a group of the tenant is privileged
// (plan.TrustPolicy.PrivilegedGroup), reading what a member of it inherits when the policy
// does not list the privileged groups.
func (w World) PrivilegedGroup(ctx context.Context, groupID string) (bool, error) {
	if w.Trust.PrivilegedGroups != nil {
		return w.Trust.PrivilegedGroup(groupID, nil, nil), nil
	}
	inherited, err := w.R.InheritedRoles(ctx, groupID)
	if err != nil {
		return true, err
	}
	// The answer carries each role's type; the tenant's known types are read only for a role
	// that came without one.
	var types map[string]cipherscale.RoleType
	for _, roles := range inherited {
		for _, r := range roles {
			if r.Type == "" && types == nil {
				if types, err = w.R.RoleTypes(ctx); err != nil {
					return true, err
				}
			}
		}
	}
	return w.Trust.PrivilegedGroup(groupID, inherited, types), nil
}

// RefusedRoles returns the privileged roles an object of the namespace asks to grant or remove
// and may not (plan.TrustPolicy.RefusedRoles): spec is spec.roles, held the user's current
// direct roles (nil before the user is found). nil when none is refused.
func (w World) RefusedRoles(ctx context.Context, namespace string, spec *[]string, held []cipherscale.Role) ([]string, error) {
	if spec == nil || w.Trust.Privileged.Allows(namespace) {
		return nil, nil
	}
	types, err := w.R.RoleTypes(ctx)
	if err != nil {
		return nil, err
	}
	return w.Trust.RefusedRoles(namespace, spec, held, types), nil
}

// RefusedGroups returns the privileged groups an object of the namespace puts the user in
// (spec, spec.groups) or would take them out of (removed) and may not
// (plan.TrustPolicy.RefusedGroups). nil when none is refused.
func (w World) RefusedGroups(ctx context.Context, namespace string, spec *[]string, removed []string) ([]string, error) {
	if (spec == nil && len(removed) == 0) || w.Trust.Privileged.Allows(namespace) {
		return nil, nil
	}
	var ids []string
	if spec != nil {
		ids = append(ids, *spec...)
	}
	privileged := map[string]bool{}
	for _, id := range plan.SortedSet(append(ids, removed...)) {
		p, err := w.PrivilegedGroup(ctx, id)
		if err != nil {
			return nil, err
		}
		privileged[id] = p
	}
	return w.Trust.RefusedGroups(namespace, spec, removed, func(id string) bool { return privileged[plan.NormalizeID(id)] }), nil
}
