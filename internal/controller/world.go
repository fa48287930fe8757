package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// world is what the reconcilers ask of one tenant's objects: the decisions of internal/decide
// (the same `kubectl cipherscale plan` makes) over cacheReader, the manager's cache. It only
// reads.
type world struct {
	kube client.Reader
	// trust says which namespaces may have Authoritative memberships: the others' own no scope.
	trust plan.TrustPolicy
	// tenant is the tenant whose objects count: the same email or group in another tenant is
	// another person or group.
	tenant tenant.Key
	// api is that tenant, read to tell whether a group is privileged (privilegedGroup); nil:
	// every group is, unless the trust policy lists the privileged groups.
	api *tenant.Tenant
}

func (w world) shared() decide.World {
	return decide.World{R: cacheReader(w), Trust: w.trust}
}

// cacheReader is decide.Reader over the manager's cache and its field indexes.
type cacheReader world

var _ decide.Reader = cacheReader{}

func (c cacheReader) UsersWithEmail(ctx context.Context, email string) ([]iamv1alpha1.CipherscaleUser, error) {
	var list iamv1alpha1.CipherscaleUserList
	if err := c.kube.List(ctx, &list, client.MatchingFields{indexUserEmail: scoped(c.tenant, cipherscale.NormalizeEmail(email))}); err != nil {
		return nil, fmt.Errorf("listing CipherscaleUsers by email: %w", err)
	}
	return list.Items, nil
}

func (c cacheReader) MembershipsOfGroup(ctx context.Context, groupID string) ([]iamv1alpha1.CipherscaleGroupMembership, error) {
	var list iamv1alpha1.CipherscaleGroupMembershipList
	if err := c.kube.List(ctx, &list, client.MatchingFields{indexMembershipGroup: scoped(c.tenant, plan.NormalizeID(groupID))}); err != nil {
		return nil, fmt.Errorf("listing CipherscaleGroupMemberships by group: %w", err)
	}
	return list.Items, nil
}

func (c cacheReader) MembershipsNaming(ctx context.Context, namespace, name, email string) ([]iamv1alpha1.CipherscaleGroupMembership, error) {
	seen := map[types.UID]bool{}
	var out []iamv1alpha1.CipherscaleGroupMembership
	for _, key := range []string{memberKeyRef(namespace, name), memberKeyEmail(email)} {
		var list iamv1alpha1.CipherscaleGroupMembershipList
		if err := c.kube.List(ctx, &list, client.MatchingFields{indexMembershipMember: scoped(c.tenant, key)}); err != nil {
			return nil, fmt.Errorf("listing CipherscaleGroupMemberships by member: %w", err)
		}
		for i := range list.Items {
			if !seen[list.Items[i].UID] {
				seen[list.Items[i].UID] = true
				out = append(out, list.Items[i])
			}
		}
	}
	return out, nil
}

func (c cacheReader) User(ctx context.Context, namespace, name string) (*iamv1alpha1.CipherscaleUser, error) {
	var u iamv1alpha1.CipherscaleUser
	err := c.kube.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &u)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading CipherscaleUser %s: %w", name, err)
	case tenantOf(&u) != c.tenant:
		return nil, nil
	}
	return &u, nil
}

// TenantUsable reports whether objects of the namespace may use the world's tenant: a
// ClusterCipherscaleTenant only from the namespaces its namespaceSelector selects (the rule of
// TenantResolver.Resolve); a CipherscaleTenant's key holds its own namespace. An object that may
// not use its tenant is InvalidTenant and declares nothing.
func (c cacheReader) TenantUsable(ctx context.Context, namespace string) (bool, error) {
	if c.tenant.Kind != tenant.KindCluster {
		return true, nil
	}
	t := &iamv1alpha1.ClusterCipherscaleTenant{}
	if err := c.kube.Get(ctx, client.ObjectKey{Name: c.tenant.Name}, t); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading %s: %w", c.tenant, err)
	}
	ok, _, err := (&TenantResolver{Kube: c.kube}).selects(ctx, t.Spec.NamespaceSelector, namespace)
	return ok, err
}

func (c cacheReader) InheritedRoles(ctx context.Context, groupID string) ([][]cipherscale.Role, error) {
	if c.api == nil {
		return nil, nil
	}
	return c.api.GroupInheritedRoles(ctx, groupID)
}

func (c cacheReader) RoleTypes(ctx context.Context) (map[string]cipherscale.RoleType, error) {
	if c.api == nil {
		return nil, nil
	}
	return c.api.RoleTypes(ctx)
}

// The reconcilers' names for the decisions of internal/decide.

func (w world) privilegedGroup(ctx context.Context, groupID string) (bool, error) {
	return w.shared().PrivilegedGroup(ctx, groupID)
}

func (w world) emailOwner(ctx context.Context, email string) (*iamv1alpha1.CipherscaleUser, error) {
	return w.shared().EmailOwner(ctx, email)
}

func (w world) emailOwnerFor(ctx context.Context, self *iamv1alpha1.CipherscaleUser, own bool) (*iamv1alpha1.CipherscaleUser, error) {
	return w.shared().EmailOwnerFor(ctx, self, own)
}

func (w world) pairFacts(ctx context.Context, email, groupID string, present bool, exclude plan.Source) (plan.PairFacts, error) {
	return w.shared().PairFacts(ctx, email, groupID, present, exclude)
}

func (w world) userGroupChanges(ctx context.Context, u *iamv1alpha1.CipherscaleUser, live *cipherscale.User) (add, remove []string, err error) {
	return w.shared().UserGroupChanges(ctx, u, live)
}

func (w world) membershipsNaming(ctx context.Context, u *iamv1alpha1.CipherscaleUser) ([]iamv1alpha1.CipherscaleGroupMembership, error) {
	return cacheReader(w).MembershipsNaming(ctx, u.Namespace, u.Name, u.Spec.Email)
}

// resolvedMember is one member of a membership with its email resolved (decide.ResolvedMember).
type resolvedMember struct {
	spec  iamv1alpha1.Member
	email string
	user  *iamv1alpha1.CipherscaleUser
}

func (w world) resolveMembers(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership) ([]resolvedMember, error) {
	rs, err := w.shared().ResolveMembers(ctx, m)
	if err != nil {
		return nil, err
	}
	out := make([]resolvedMember, len(rs))
	for i, r := range rs {
		out[i] = resolvedMember{spec: r.Spec, email: r.Email, user: r.User}
	}
	return out, nil
}

// refusals is decide.World.Refusals over the reconciler's resolved members (each email
// member's user is set to the CipherscaleUser that owns its email).
func (w world) refusals(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, members []resolvedMember) (refused []bool, managed, undeclared int, err error) {
	rs := make([]decide.ResolvedMember, len(members))
	for i, r := range members {
		rs[i] = decide.ResolvedMember{Spec: r.spec, Email: r.email, User: r.user}
	}
	refused, managed, undeclared, err = w.shared().Refusals(ctx, m, rs)
	for i := range rs {
		members[i].user = rs[i].User
	}
	return refused, managed, undeclared, err
}

func membershipSource(m *iamv1alpha1.CipherscaleGroupMembership) plan.Source {
	return decide.MembershipSource(m)
}

func ownerOf(items []iamv1alpha1.CipherscaleUser, self *iamv1alpha1.CipherscaleUser, ownSelf bool) *iamv1alpha1.CipherscaleUser {
	return decide.OwnerOf(items, self, ownSelf)
}

func authoritativeOwner(ms []iamv1alpha1.CipherscaleGroupMembership, trust plan.TrustPolicy) *iamv1alpha1.CipherscaleGroupMembership {
	return decide.AuthoritativeOwner(ms, trust)
}
