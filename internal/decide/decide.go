// Package decide holds the decisions the operator's reconcilers and `kubectl cipherscale plan`
// both make over the objects of one tenant: who owns an email, which memberships of a group
// count, who declares a (user, group) pair, what a membership may act on, and the group changes
// of a user. It reads through Reader (the manager's cache in the operator, objects in memory in
// the plugin) and leaves each rule to the pure functions of internal/plan. It writes nothing.
package decide

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// Reader reads the objects of one tenant (the same email or group in another tenant is another
// person or group). It only reads.
type Reader interface {
	// UsersWithEmail returns the tenant's CipherscaleUsers whose spec.email normalizes to email.
	UsersWithEmail(ctx context.Context, email string) ([]iamv1alpha1.CipherscaleUser, error)
	// MembershipsOfGroup returns the tenant's memberships whose group normalizes to groupID.
	MembershipsOfGroup(ctx context.Context, groupID string) ([]iamv1alpha1.CipherscaleGroupMembership, error)
	// MembershipsNaming returns the tenant's memberships that name the CipherscaleUser
	// namespace/name by reference, or email as an email member (each once).
	MembershipsNaming(ctx context.Context, namespace, name, email string) ([]iamv1alpha1.CipherscaleGroupMembership, error)
	// User returns the CipherscaleUser namespace/name when it exists and is of the tenant; nil
	// otherwise.
	User(ctx context.Context, namespace, name string) (*iamv1alpha1.CipherscaleUser, error)
	// TenantUsable reports whether objects of the namespace may use the tenant.
	TenantUsable(ctx context.Context, namespace string) (bool, error)
	// InheritedRoles returns what members of the group inherit through their groups
	// (plan.TrustPolicy.PrivilegedGroup); nil when nothing is known of it.
	InheritedRoles(ctx context.Context, groupID string) ([][]cipherscale.Role, error)
	// RoleTypes returns the role types known of the tenant, by normalized id.
	RoleTypes(ctx context.Context) (map[string]cipherscale.RoleType, error)
}

// World is one tenant's objects as a Reader shows them, with the tenant's trust policy.
type World struct {
	R     Reader
	Trust plan.TrustPolicy
}

// UserSource and MembershipSource name a declaration's source.
func UserSource(u *iamv1alpha1.CipherscaleUser) plan.Source {
	return plan.Source("CipherscaleUser/" + u.Namespace + "/" + u.Name)
}

// MembershipSource names a membership as the source of a declaration.
func MembershipSource(m *iamv1alpha1.CipherscaleGroupMembership) plan.Source {
	return plan.Source("CipherscaleGroupMembership/" + m.Namespace + "/" + m.Name)
}

// ClaimOf is an object's claim to an email or a group's authoritative scope (plan.OwnerOf).
func ClaimOf(o metav1.Object) plan.Claim {
	return plan.Claim{Created: o.GetCreationTimestamp().UnixNano(), Key: o.GetNamespace() + "/" + o.GetName()}
}

// RefusedClaim reports whether an object's last pass refused it (InvalidTenant,
// AdoptionNotAllowed, NotAllowed, EmailConflict) while it manages nobody (no status.id, which
// only the operator writes): such an object owns no email and declares nobody, so that an object
// a namespace may not have neither squats an email another namespace needs nor shields a user
// from the undeclared-users policy. An object that does manage its user keeps it whatever else
// it is refused (a privileged role asked later does not hand its user to anyone).
func RefusedClaim(conds []metav1.Condition, statusID string) bool {
	if statusID != "" {
		return false
	}
	c := findReady(conds)
	if c == nil {
		return false
	}
	switch c.Reason {
	case iamv1alpha1.ReasonInvalidTenant, iamv1alpha1.ReasonAdoptionNotAllowed,
		iamv1alpha1.ReasonNotAllowed, iamv1alpha1.ReasonEmailConflict:
		return true
	}
	return false
}

func findReady(conds []metav1.Condition) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == iamv1alpha1.ConditionReady {
			return &conds[i]
		}
	}
	return nil
}

// OwnerOf decides which of the CipherscaleUsers naming one email owns it (pure). An object
// refused at its last pass that manages nobody owns nothing (RefusedClaim). Among the others,
// the one that recorded the tenant user's id (status.id, which only the operator writes) owns
// it, before any that did not: ownership never moves to an object created a second earlier.
// Then the oldest, then the first by namespace/name. self, when set, is the object asking: its
// last refusal does not count, and ownSelf says whether its id is its own record.
func OwnerOf(items []iamv1alpha1.CipherscaleUser, self *iamv1alpha1.CipherscaleUser, ownSelf bool) *iamv1alpha1.CipherscaleUser {
	var recorded, others []plan.Claim
	var recIdx, otherIdx []int
	for i := range items {
		u := &items[i]
		isSelf := self != nil && u.UID == self.UID && u.Namespace == self.Namespace && u.Name == self.Name
		if !isSelf && RefusedClaim(u.Status.Conditions, u.Status.ID) {
			continue
		}
		if u.Status.ID != "" || isSelf && ownSelf {
			recorded, recIdx = append(recorded, ClaimOf(u)), append(recIdx, i)
		} else {
			others, otherIdx = append(others, ClaimOf(u)), append(otherIdx, i)
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

// EmailOwner returns the CipherscaleUser that owns an email in the tenant, in any namespace
// (OwnerOf). nil when none does.
func (w World) EmailOwner(ctx context.Context, email string) (*iamv1alpha1.CipherscaleUser, error) {
	list, err := w.R.UsersWithEmail(ctx, cipherscale.NormalizeEmail(email))
	if err != nil {
		return nil, err
	}
	return OwnerOf(list, nil, false), nil
}

// EmailOwnerFor is EmailOwner as seen by self, the object whose pass asks: its own refusal of
// the last pass does not count (this pass decides it again), and own says whether the id it
// names is its own record (a proof that verifies counts as much as status.id).
func (w World) EmailOwnerFor(ctx context.Context, self *iamv1alpha1.CipherscaleUser, own bool) (*iamv1alpha1.CipherscaleUser, error) {
	list, err := w.R.UsersWithEmail(ctx, cipherscale.NormalizeEmail(self.Spec.Email))
	if err != nil {
		return nil, err
	}
	return OwnerOf(list, self, own), nil
}

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

// MemberFacts gathers what decides whether a membership may act on a member (plan.MemberFacts):
// managedIn is the namespace of the CipherscaleUser that manages the member's email, "" when
// none does. A privileged namespace is never asked about the group: it may act on any.
func (w World) MemberFacts(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, managedIn string) (plan.MemberFacts, error) {
	f := plan.MemberFacts{Namespace: m.Namespace, ManagedIn: managedIn}
	var err error
	if f.TenantUsable, err = w.R.TenantUsable(ctx, m.Namespace); err != nil || !f.TenantUsable {
		return f, err
	}
	if !w.Trust.Privileged.Allows(m.Namespace) {
		f.PrivilegedGroup, err = w.PrivilegedGroup(ctx, m.Spec.GroupID)
	}
	return f, err
}

// MayActOn reports whether a membership may act on the member whose email managedIn's
// CipherscaleUser manages (see MemberFacts).
func (w World) MayActOn(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, managedIn string) (bool, error) {
	f, err := w.MemberFacts(ctx, m, managedIn)
	if err != nil {
		return false, err
	}
	return w.Trust.MayActOnMember(f), nil
}

// AuthoritativeOwner returns the oldest Authoritative membership among ms from a namespace the
// trust policy allows to have one, nil when none.
func AuthoritativeOwner(ms []iamv1alpha1.CipherscaleGroupMembership, trust plan.TrustPolicy) *iamv1alpha1.CipherscaleGroupMembership {
	var auth []*iamv1alpha1.CipherscaleGroupMembership
	var claims []plan.Claim
	for i := range ms {
		if ms[i].Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && trust.MayBeAuthoritative(ms[i].Namespace) {
			auth = append(auth, &ms[i])
			claims = append(claims, ClaimOf(&ms[i]))
		}
	}
	if i := plan.OwnerOf(claims); i >= 0 {
		return auth[i]
	}
	return nil
}

// GroupMemberships returns the memberships of a group that count: not being deleted, and not a
// newer Authoritative membership that conflicts with the owner of the group's authoritative
// scope. authoritative is that owner, nil when the group has none.
func (w World) GroupMemberships(ctx context.Context, groupID string) (counting []iamv1alpha1.CipherscaleGroupMembership, authoritative *iamv1alpha1.CipherscaleGroupMembership, err error) {
	list, err := w.R.MembershipsOfGroup(ctx, plan.NormalizeID(groupID))
	if err != nil {
		return nil, nil, err
	}
	owner := AuthoritativeOwner(list, w.Trust)
	if owner != nil {
		// One whose namespace may not use the tenant (InvalidTenant) owns no scope: nobody
		// is removed for it.
		usable, err := w.R.TenantUsable(ctx, owner.Namespace)
		if err != nil {
			return nil, nil, err
		}
		if !usable {
			owner = nil
		}
	}
	for i := range list {
		m := &list[i]
		if !m.DeletionTimestamp.IsZero() {
			continue
		}
		if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && (owner == nil || owner != m) {
			continue // GroupConflict or NotAllowed: declares nothing
		}
		counting = append(counting, *m)
	}
	if owner != nil && owner.DeletionTimestamp.IsZero() {
		authoritative = owner
	}
	return counting, authoritative, nil
}

// ResolvedMember is one member of a membership with its email resolved.
type ResolvedMember struct {
	Spec iamv1alpha1.Member
	// Email is "" while a userRef names a CipherscaleUser that does not exist.
	Email string
	// User is the referenced CipherscaleUser, nil for email members.
	User *iamv1alpha1.CipherscaleUser
}

// ResolveMembers resolves each member's email: userRefs through the CipherscaleUser they name,
// which counts only when it is of the membership's tenant (another tenant's user is another
// person, and the member waits as for a user that does not exist).
func (w World) ResolveMembers(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership) ([]ResolvedMember, error) {
	out := make([]ResolvedMember, 0, len(m.Spec.Members))
	for _, mem := range m.Spec.Members {
		r := ResolvedMember{Spec: mem}
		if mem.UserRef == nil {
			r.Email = cipherscale.NormalizeEmail(mem.Email)
			out = append(out, r)
			continue
		}
		u, err := w.R.User(ctx, m.Namespace, mem.UserRef.Name)
		if err != nil {
			return nil, err
		}
		if u != nil {
			r.User = u
			r.Email = cipherscale.NormalizeEmail(u.Spec.Email)
		}
		out = append(out, r)
	}
	return out, nil
}

// Declares reports whether a membership's members name the user with this email. user, when
// set, is that email's CipherscaleUser: a userRef names it by name, without reading the other
// CipherscaleUsers the membership names.
func (w World) Declares(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, email string, user *iamv1alpha1.CipherscaleUser) (bool, error) {
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
	members, err := w.ResolveMembers(ctx, m)
	if err != nil {
		return false, err
	}
	for _, r := range members {
		if r.Email != "" && r.Email == email {
			return true, nil
		}
	}
	return false, nil
}

// PairFacts gathers the facts of the pair (email, group). exclude, when set, is an object being
// released (deleted) whose declaration must not count.
func (w World) PairFacts(ctx context.Context, email, groupID string, present bool, exclude plan.Source) (plan.PairFacts, error) {
	f := plan.PairFacts{Present: present}
	email = cipherscale.NormalizeEmail(email)
	gid := plan.NormalizeID(groupID)

	owner, err := w.EmailOwner(ctx, email)
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
	if owner != nil && owner.Spec.Groups != nil && UserSource(owner) != exclude {
		f.UserAuthoritative = true
		for _, g := range *owner.Spec.Groups {
			if plan.NormalizeID(g) == gid {
				f.DeclaredBy = append(f.DeclaredBy, UserSource(owner))
				break
			}
		}
	}
	counting, auth, err := w.GroupMemberships(ctx, gid)
	if err != nil {
		return f, err
	}
	f.GroupAuthoritative = auth != nil && MembershipSource(auth) != exclude
	for i := range counting {
		m := &counting[i]
		if MembershipSource(m) == exclude {
			continue
		}
		ok, err := w.Declares(ctx, m, email, owner)
		if err != nil {
			return f, err
		}
		if ok {
			if ok, err = w.MayActOn(ctx, m, managedIn); err != nil {
				return f, err
			}
		}
		if ok {
			f.DeclaredBy = append(f.DeclaredBy, MembershipSource(m))
		}
	}
	return f, nil
}

// UserGroupChanges returns the group changes of a CipherscaleUser's tenant user. The user's
// reconciler is the one writer of every (user, group) pair of a user that has a CipherscaleUser:
// the pairs its spec.groups declares, those the memberships naming it declare, and those in an
// authoritative scope that nothing declares. Each pair is decided by the membership rule.
func (w World) UserGroupChanges(ctx context.Context, u *iamv1alpha1.CipherscaleUser, live *cipherscale.User) (add, remove []string, err error) {
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
	naming, err := w.R.MembershipsNaming(ctx, u.Namespace, u.Name, cipherscale.NormalizeEmail(u.Spec.Email))
	if err != nil {
		return nil, nil, err
	}
	for i := range naming {
		if naming[i].DeletionTimestamp.IsZero() {
			candidates[plan.NormalizeID(naming[i].Spec.GroupID)] = true
		}
	}
	ids := make([]string, 0, len(candidates))
	for g := range candidates {
		ids = append(ids, g)
	}
	for _, g := range plan.SortedSet(ids) {
		f, err := w.PairFacts(ctx, u.Spec.Email, g, present[g], "")
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

// ManagedIn is the namespace that manages a member of membership m (plan.MemberFacts.ManagedIn):
// m's own for a userRef, that of the CipherscaleUser that owns the member's email (user)
// otherwise, "" when none does.
func ManagedIn(m *iamv1alpha1.CipherscaleGroupMembership, member iamv1alpha1.Member, user *iamv1alpha1.CipherscaleUser) string {
	switch {
	case member.UserRef != nil:
		return m.Namespace
	case user != nil:
		return user.Namespace
	}
	return ""
}

// MayActOnMember reports whether membership m, whose pass uses its tenant, may act on a member
// that managedIn manages (plan.TrustPolicy.MayActOnMember; the group's privilege is decided
// before, for the whole membership).
func MayActOnMember(trust plan.TrustPolicy, m *iamv1alpha1.CipherscaleGroupMembership, managedIn string) bool {
	return trust.MayActOnMember(plan.MemberFacts{Namespace: m.Namespace, TenantUsable: true, ManagedIn: managedIn})
}

// Refusals decides which members of membership m it may not act on (MayActOnMember), as its
// pass does before it reads or writes anything of them: it sets the User of each email member
// to the CipherscaleUser that owns the email (nil when none does), and returns, per member,
// whether it is refused, and how many refused members another namespace manages (NotAllowed)
// or no CipherscaleUser declares (AdoptionNotAllowed).
func (w World) Refusals(ctx context.Context, m *iamv1alpha1.CipherscaleGroupMembership, members []ResolvedMember) (refused []bool, managed, undeclared int, err error) {
	refused = make([]bool, len(members))
	for i := range members {
		r := &members[i]
		if r.User == nil && r.Email != "" {
			if r.User, err = w.EmailOwner(ctx, r.Email); err != nil {
				return nil, 0, 0, err
			}
		}
		managedIn := ManagedIn(m, r.Spec, r.User)
		if r.Email == "" || MayActOnMember(w.Trust, m, managedIn) {
			continue
		}
		refused[i] = true
		if managedIn != "" {
			managed++
		} else {
			undeclared++
		}
	}
	return refused, managed, undeclared, nil
}
