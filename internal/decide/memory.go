package decide

import (
	"context"
	"sort"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// Memory is a Reader over the objects of one tenant held in memory: what `kubectl cipherscale
// plan` sees (the manifests' objects over the cluster's). Build it with NewMemory.
type Memory struct {
	users       []iamv1alpha1.CipherscaleUser
	memberships []iamv1alpha1.CipherscaleGroupMembership
	// Usable reports whether objects of a namespace may use the tenant; nil: every namespace.
	Usable func(namespace string) bool
	// Inherited holds, by normalized group id, what members of the group inherit through their
	// groups; a group it does not hold is one nothing is known of (privileged, unless the trust
	// policy lists the privileged groups).
	Inherited map[string][][]cipherscale.Role
	// Types are the role types known of the tenant, by normalized id.
	Types map[string]cipherscale.RoleType
}

var _ Reader = (*Memory)(nil)

// NewMemory holds copies of the objects, sorted by namespace/name.
func NewMemory(users []iamv1alpha1.CipherscaleUser, memberships []iamv1alpha1.CipherscaleGroupMembership) *Memory {
	m := &Memory{
		users:       append([]iamv1alpha1.CipherscaleUser(nil), users...),
		memberships: append([]iamv1alpha1.CipherscaleGroupMembership(nil), memberships...),
	}
	sort.Slice(m.users, func(i, j int) bool {
		return m.users[i].Namespace+"/"+m.users[i].Name < m.users[j].Namespace+"/"+m.users[j].Name
	})
	sort.Slice(m.memberships, func(i, j int) bool {
		return m.memberships[i].Namespace+"/"+m.memberships[i].Name < m.memberships[j].Namespace+"/"+m.memberships[j].Name
	})
	return m
}

// Users returns the CipherscaleUsers, sorted by namespace/name.
func (m *Memory) Users() []iamv1alpha1.CipherscaleUser { return m.users }

// Memberships returns the memberships, sorted by namespace/name.
func (m *Memory) Memberships() []iamv1alpha1.CipherscaleGroupMembership { return m.memberships }

func (m *Memory) UsersWithEmail(_ context.Context, email string) ([]iamv1alpha1.CipherscaleUser, error) {
	email = cipherscale.NormalizeEmail(email)
	var out []iamv1alpha1.CipherscaleUser
	for i := range m.users {
		if cipherscale.NormalizeEmail(m.users[i].Spec.Email) == email {
			out = append(out, m.users[i])
		}
	}
	return out, nil
}

func (m *Memory) MembershipsOfGroup(_ context.Context, groupID string) ([]iamv1alpha1.CipherscaleGroupMembership, error) {
	gid := plan.NormalizeID(groupID)
	var out []iamv1alpha1.CipherscaleGroupMembership
	for i := range m.memberships {
		if plan.NormalizeID(m.memberships[i].Spec.GroupID) == gid {
			out = append(out, m.memberships[i])
		}
	}
	return out, nil
}

func (m *Memory) MembershipsNaming(_ context.Context, namespace, name, email string) ([]iamv1alpha1.CipherscaleGroupMembership, error) {
	email = cipherscale.NormalizeEmail(email)
	var out []iamv1alpha1.CipherscaleGroupMembership
	for i := range m.memberships {
		ms := &m.memberships[i]
		for _, mem := range ms.Spec.Members {
			if mem.UserRef != nil && ms.Namespace == namespace && mem.UserRef.Name == name ||
				mem.UserRef == nil && cipherscale.NormalizeEmail(mem.Email) == email {
				out = append(out, *ms)
				break
			}
		}
	}
	return out, nil
}

func (m *Memory) User(_ context.Context, namespace, name string) (*iamv1alpha1.CipherscaleUser, error) {
	for i := range m.users {
		if m.users[i].Namespace == namespace && m.users[i].Name == name {
			u := m.users[i]
			return &u, nil
		}
	}
	return nil, nil
}

func (m *Memory) TenantUsable(_ context.Context, namespace string) (bool, error) {
	return m.Usable == nil || m.Usable(namespace), nil
}

func (m *Memory) InheritedRoles(_ context.Context, groupID string) ([][]cipherscale.Role, error) {
	return m.Inherited[plan.NormalizeID(groupID)], nil
}

func (m *Memory) RoleTypes(context.Context) (map[string]cipherscale.RoleType, error) {
	return m.Types, nil
}
