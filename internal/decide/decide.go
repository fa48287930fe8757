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
