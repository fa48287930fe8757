// What a membership may do: its members resolved, those it may act on, and which Authoritative
// membership of a group owns its scope.

package decide

import (
	"context"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

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
