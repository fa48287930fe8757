package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// world reads, from the manager's cache, what the membership rule needs: who declares which
// (user, group) pair and which scopes are authoritative, within one tenant. It only reads.
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

// tenantUsable reports whether objects of the namespace may use the world's tenant: a
// ClusterCipherscaleTenant only from the namespaces its namespaceSelector selects (the rule of
// TenantResolver.Resolve); a CipherscaleTenant's key holds its own namespace. An object that may
// not use its tenant is InvalidTenant and declares nothing.
func (w world) tenantUsable(ctx context.Context, namespace string) (bool, error) {
	if w.tenant.Kind != tenant.KindCluster {
		return true, nil
	}
	t := &iamv1alpha1.ClusterCipherscaleTenant{}
	if err := w.kube.Get(ctx, client.ObjectKey{Name: w.tenant.Name}, t); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading %s: %w", w.tenant, err)
	}
	ok, _, err := (&TenantResolver{Kube: w.kube}).selects(ctx, t.Spec.NamespaceSelector, namespace)
	return ok, err
}

// privilegedGroup reports whether a group of the world's tenant is privileged
// (plan.TrustPolicy.PrivilegedGroup), reading what a member of it inherits when the policy
// does not list the privileged groups.
func (w world) privilegedGroup(ctx context.Context, groupID string) (bool, error) {
	if w.trust.PrivilegedGroups != nil || w.api == nil {
		return w.trust.PrivilegedGroup(groupID, nil, nil), nil
	}
	inherited, err := w.api.GroupInheritedRoles(ctx, groupID)
	if err != nil {
		return true, err
	}
	// The answer carries each role's type; the snapshot's types (a walk of every user) are
	// read only for a role that came without one.
	var types map[string]cipherscale.RoleType
	for _, roles := range inherited {
		for _, r := range roles {
			if r.Type == "" && types == nil {
				if types, err = w.api.RoleTypes(ctx); err != nil {
					return true, err
				}
			}
		}
	}
	return w.trust.PrivilegedGroup(groupID, inherited, types), nil
}

// memberFacts gathers what decides whether a membership may act on a member (plan.MemberFacts):
// managedIn is the namespace of the CipherscaleUser that manages the member's email, "" when
// none does. A privileged namespace is never asked about the group: it may act on any.
func (w world) memberFacts(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, managedIn string) (plan.MemberFacts, error) {
	f := plan.MemberFacts{Namespace: m.Namespace, ManagedIn: managedIn}
	var err error
	if f.TenantUsable, err = w.tenantUsable(ctx, m.Namespace); err != nil || !f.TenantUsable {
		return f, err
	}
	if !w.trust.Privileged.Allows(m.Namespace) {
		f.PrivilegedGroup, err = w.privilegedGroup(ctx, m.Spec.GroupID)
	}
	return f, err
}

// mayActOn reports whether a membership may act on the member whose email managedIn's
// CipherscaleUser manages (see memberFacts).
func (w world) mayActOn(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, managedIn string) (bool, error) {
	f, err := w.memberFacts(ctx, m, managedIn)
	if err != nil {
		return false, err
	}
	return w.trust.MayActOnMember(f), nil
}

func userSource(u *iamv1alpha1.CipherscaleUser) plan.Source {
	return plan.Source("CipherscaleUser/" + u.Namespace + "/" + u.Name)
}

func membershipSource(m *iamv1alpha1.CipherscaleGroupMembership) plan.Source {
	return plan.Source("CipherscaleGroupMembership/" + m.Namespace + "/" + m.Name)
}

func claimOf(o client.Object) plan.Claim {
	return plan.Claim{Created: o.GetCreationTimestamp().UnixNano(), Key: o.GetNamespace() + "/" + o.GetName()}
}

// emailOwner returns the CipherscaleUser that owns an email in the world's tenant, in any
// namespace (ownerOf). nil when none does.
func (w world) emailOwner(ctx context.Context, email string) (*iamv1alpha1.CipherscaleUser, error) {
	list, err := w.usersNaming(ctx, email)
	if err != nil {
		return nil, err
	}
	return ownerOf(list, nil, false), nil
}

// emailOwnerFor is emailOwner as seen by self, the object whose pass asks: its own refusal of
// the last pass does not count (this pass decides it again), and own says whether the id it
// names is its own record (a proof that verifies counts as much as status.id).
func (w world) emailOwnerFor(ctx context.Context, self *iamv1alpha1.CipherscaleUser, own bool) (*iamv1alpha1.CipherscaleUser, error) {
	list, err := w.usersNaming(ctx, self.Spec.Email)
	if err != nil {
		return nil, err
	}
	return ownerOf(list, self, own), nil
}

func (w world) usersNaming(ctx context.Context, email string) ([]iamv1alpha1.CipherscaleUser, error) {
	var list iamv1alpha1.CipherscaleUserList
	if err := w.kube.List(ctx, &list, client.MatchingFields{indexUserEmail: scoped(w.tenant, cipherscale.NormalizeEmail(email))}); err != nil {
		return nil, fmt.Errorf("listing CipherscaleUsers by email: %w", err)
	}
	return list.Items, nil
}

// ownerOf decides which of the CipherscaleUsers naming one email owns it (pure). An object
// refused at its last pass that manages nobody owns nothing (refusedClaim). Among the others,
// the one that recorded the tenant user's id (status.id, which only the operator writes) owns
// it, before any that did not: ownership never moves to an object created a second earlier.
// Then the oldest, then the first by namespace/name. self, when set, is the object asking: its
// last refusal does not count, and ownSelf says whether its id is its own record.
func ownerOf(items []iamv1alpha1.CipherscaleUser, self *iamv1alpha1.CipherscaleUser, ownSelf bool) *iamv1alpha1.CipherscaleUser {
	var recorded, others []plan.Claim
	var recIdx, otherIdx []int
	for i := range items {
		u := &items[i]
		isSelf := self != nil && u.UID == self.UID
		if !isSelf && refusedClaim(u.Status.Conditions, u.Status.ID) {
			continue
		}
		if u.Status.ID != "" || isSelf && ownSelf {
			recorded, recIdx = append(recorded, claimOf(u)), append(recIdx, i)
		} else {
			others, otherIdx = append(others, claimOf(u)), append(otherIdx, i)
		}
	}
	if i := plan.OwnerOf(recorded); i >= 0 {
		return &items[recIdx[i]]
	}
	if i := plan.OwnerOf(others); i >= 0 {
		return &items[otherIdx[i]]
	}
	return nil
}

// groupMemberships returns the memberships of a group that count: not being deleted, and not a
// newer Authoritative membership that conflicts with the owner of the group's authoritative
// scope. authoritative is that owner, nil when the group has none.
func (w world) groupMemberships(ctx context.Context, groupID string) (counting []iamv1alpha1.CipherscaleGroupMembership, authoritative *iamv1alpha1.CipherscaleGroupMembership, err error) {
	var list iamv1alpha1.CipherscaleGroupMembershipList
	if err := w.kube.List(ctx, &list, client.MatchingFields{indexMembershipGroup: scoped(w.tenant, plan.NormalizeID(groupID))}); err != nil {
		return nil, nil, fmt.Errorf("listing CipherscaleGroupMemberships by group: %w", err)
	}
	owner := authoritativeOwner(list.Items, w.trust)
	if owner != nil {
		// One whose namespace may not use the tenant (InvalidTenant) owns no scope: nobody
		// is removed for it.
		usable, err := w.tenantUsable(ctx, owner.Namespace)
		if err != nil {
			return nil, nil, err
		}
		if !usable {
			owner = nil
		}
	}
	for i := range list.Items {
		m := &list.Items[i]
		if !m.DeletionTimestamp.IsZero() {
			continue
		}
		if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && (owner == nil || owner.UID != m.UID) {
			continue // GroupConflict or NotAllowed: declares nothing
		}
		counting = append(counting, *m)
	}
	if owner != nil && owner.DeletionTimestamp.IsZero() {
		authoritative = owner
	}
	return counting, authoritative, nil
}

// authoritativeOwner returns the oldest Authoritative membership among ms from a namespace the
// trust policy allows to have one, nil when none.
func authoritativeOwner(ms []iamv1alpha1.CipherscaleGroupMembership, trust plan.TrustPolicy) *iamv1alpha1.CipherscaleGroupMembership {
	var auth []*iamv1alpha1.CipherscaleGroupMembership
	var claims []plan.Claim
	for i := range ms {
		if ms[i].Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && trust.MayBeAuthoritative(ms[i].Namespace) {
			auth = append(auth, &ms[i])
			claims = append(claims, claimOf(&ms[i]))
		}
	}
	if i := plan.OwnerOf(claims); i >= 0 {
		return auth[i]
	}
	return nil
}

// resolvedMember is one member of a membership with its email resolved.
type resolvedMember struct {
	spec iamv1alpha1.Member
	// email is "" while a userRef names a CipherscaleUser that does not exist.
	email string
	// user is the referenced CipherscaleUser, nil for email members.
	user *iamv1alpha1.CipherscaleUser
}

// resolveMembers resolves each member's email: userRefs through the CipherscaleUser they name,
// which counts only when it is of the membership's tenant (another tenant's user is another
// person, and the member waits as for a user that does not exist).
func (w world) resolveMembers(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership) ([]resolvedMember, error) {
	out := make([]resolvedMember, 0, len(m.Spec.Members))
	for _, mem := range m.Spec.Members {
		r := resolvedMember{spec: mem}
		if mem.UserRef == nil {
			r.email = cipherscale.NormalizeEmail(mem.Email)
			out = append(out, r)
			continue
		}
		var u iamv1alpha1.CipherscaleUser
		err := w.kube.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: mem.UserRef.Name}, &u)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("reading CipherscaleUser %s: %w", mem.UserRef.Name, err)
		case tenantOf(&u) != tenantOf(m):
		default:
			r.user = &u
			r.email = cipherscale.NormalizeEmail(u.Spec.Email)
		}
		out = append(out, r)
	}
	return out, nil
}

// declares reports whether a membership's members name the user with this email. user, when
// set, is that email's CipherscaleUser: a userRef names it by name, without reading the other
// CipherscaleUsers the membership names.
func (w world) declares(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, email string, user *iamv1alpha1.CipherscaleUser) (bool, error) {
	if user != nil {
		for _, mem := range m.Spec.Members {
			switch {
			case mem.UserRef != nil:
				if m.Namespace == user.Namespace && mem.UserRef.Name == user.Name {
					return true, nil
				}
			case cipherscale.NormalizeEmail(mem.Email) == email:
				return true, nil
			}
		}
		return false, nil
	}
	members, err := w.resolveMembers(ctx, m)
	if err != nil {
		return false, err
	}
	for _, r := range members {
		if r.email != "" && r.email == email {
			return true, nil
		}
	}
	return false, nil
}

// pairFacts gathers the facts of the pair (email, group). exclude, when set, is an object being
// released (deleted) whose declaration must not count.
func (w world) pairFacts(ctx context.Context, email, groupID string, present bool, exclude plan.Source) (plan.PairFacts, error) {
	f := plan.PairFacts{Present: present}
	email = cipherscale.NormalizeEmail(email)
	gid := plan.NormalizeID(groupID)

	owner, err := w.emailOwner(ctx, email)
	if err != nil {
		return f, err
	}
	// The namespace that manages the person: a membership of another namespace declares the
	// pair only when it may act on that person (plan.TrustPolicy.MayActOnMember).
	managedIn := ""
	if owner != nil {
		managedIn = owner.Namespace
	}
	if owner != nil && !owner.DeletionTimestamp.IsZero() {
		owner = nil
	}
	if owner != nil && owner.Spec.Groups != nil && userSource(owner) != exclude {
		f.UserAuthoritative = true
		for _, g := range *owner.Spec.Groups {
			if plan.NormalizeID(g) == gid {
				f.DeclaredBy = append(f.DeclaredBy, userSource(owner))
				break
			}
		}
	}
	counting, auth, err := w.groupMemberships(ctx, gid)
	if err != nil {
		return f, err
	}
	f.GroupAuthoritative = auth != nil && membershipSource(auth) != exclude
	for i := range counting {
		m := &counting[i]
		if membershipSource(m) == exclude {
			continue
		}
		ok, err := w.declares(ctx, m, email, owner)
		if err != nil {
			return f, err
		}
		if ok {
			if ok, err = w.mayActOn(ctx, m, managedIn); err != nil {
				return f, err
			}
		}
		if ok {
			f.DeclaredBy = append(f.DeclaredBy, membershipSource(m))
		}
	}
	return f, nil
}

// membershipsNaming returns the memberships that name a CipherscaleUser, by reference or by
// its email, read through the member index.
func (w world) membershipsNaming(ctx context.Context, u *iamv1alpha1.CipherscaleUser) ([]iamv1alpha1.CipherscaleGroupMembership, error) {
	seen := map[types.UID]bool{}
	var out []iamv1alpha1.CipherscaleGroupMembership
	for _, key := range []string{memberKeyRef(u.Namespace, u.Name), memberKeyEmail(u.Spec.Email)} {
		var list iamv1alpha1.CipherscaleGroupMembershipList
		if err := w.kube.List(ctx, &list, client.MatchingFields{indexMembershipMember: scoped(w.tenant, key)}); err != nil {
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

// userGroupChanges returns the group changes of a CipherscaleUser's tenant user. The user's
// reconciler is the one writer of every (user, group) pair of a user that has a CipherscaleUser:
// the pairs its spec.groups declares, those the memberships naming it declare, and those in an
// authoritative scope that nothing declares. Each pair is decided by the membership rule.
func (w world) userGroupChanges(ctx context.Context, u *iamv1alpha1.CipherscaleUser, live *cipherscale.User) (add, remove []string, err error) {
	present := map[string]bool{}
	candidates := map[string]bool{}
	for _, g := range live.Groups {
		present[plan.NormalizeID(g.ID)] = true
		candidates[plan.NormalizeID(g.ID)] = true
	}
	if u.Spec.Groups != nil {
		for _, g := range *u.Spec.Groups {
			candidates[plan.NormalizeID(g)] = true
		}
	}
	naming, err := w.membershipsNaming(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	for i := range naming {
		if naming[i].DeletionTimestamp.IsZero() {
			candidates[plan.NormalizeID(naming[i].Spec.GroupID)] = true
		}
	}
	for _, g := range plan.SortedSet(keys(candidates)) {
		f, err := w.pairFacts(ctx, u.Spec.Email, g, present[g], "")
		if err != nil {
			return nil, nil, err
		}
		switch plan.DecidePair(f) {
		case plan.Add:
			add = append(add, g)
		case plan.Remove:
			remove = append(remove, g)
		}
	}
	return add, remove, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
