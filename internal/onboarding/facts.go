package onboarding

import (
	"sort"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// objectSet holds the objects of one tenant in memory, indexed the way the controllers' cache
// indexes are, and answers the questions the membership rule asks. It is the in-memory twin of
// internal/controller/world.go (which reads the manager's cache): the two must agree, and both
// leave every decision to internal/plan.
type objectSet struct {
	users       []*iamv1alpha1.CipherscaleUser
	memberships []*iamv1alpha1.CipherscaleGroupMembership
	userByKey   map[string]*iamv1alpha1.CipherscaleUser
	usersByMail map[string][]*iamv1alpha1.CipherscaleUser
	byGroup     map[string][]*iamv1alpha1.CipherscaleGroupMembership
}

func key(namespace, name string) string { return namespace + "/" + name }

func newObjectSet(users []*iamv1alpha1.CipherscaleUser, memberships []*iamv1alpha1.CipherscaleGroupMembership) *objectSet {
	s := &objectSet{
		users: users, memberships: memberships,
		userByKey:   map[string]*iamv1alpha1.CipherscaleUser{},
		usersByMail: map[string][]*iamv1alpha1.CipherscaleUser{},
		byGroup:     map[string][]*iamv1alpha1.CipherscaleGroupMembership{},
	}
	sort.Slice(users, func(i, j int) bool {
		return key(users[i].Namespace, users[i].Name) < key(users[j].Namespace, users[j].Name)
	})
	sort.Slice(memberships, func(i, j int) bool {
		return key(memberships[i].Namespace, memberships[i].Name) < key(memberships[j].Namespace, memberships[j].Name)
	})
	for _, u := range users {
		s.userByKey[key(u.Namespace, u.Name)] = u
		e := cipherscale.NormalizeEmail(u.Spec.Email)
		s.usersByMail[e] = append(s.usersByMail[e], u)
	}
	for _, m := range memberships {
		g := plan.NormalizeID(m.Spec.GroupID)
		s.byGroup[g] = append(s.byGroup[g], m)
	}
	return s
}

func userSource(u *iamv1alpha1.CipherscaleUser) plan.Source {
	return plan.Source("CipherscaleUser/" + u.Namespace + "/" + u.Name)
}

func membershipSource(m *iamv1alpha1.CipherscaleGroupMembership) plan.Source {
	return plan.Source("CipherscaleGroupMembership/" + m.Namespace + "/" + m.Name)
}

func claimOf(namespace, name string, created int64) plan.Claim {
	return plan.Claim{Created: created, Key: key(namespace, name)}
}

// emailOwner returns the CipherscaleUser that owns an email (plan.OwnerOf), nil when none.
func (s *objectSet) emailOwner(email string) *iamv1alpha1.CipherscaleUser {
	list := s.usersByMail[cipherscale.NormalizeEmail(email)]
	claims := make([]plan.Claim, len(list))
	for i, u := range list {
		claims[i] = claimOf(u.Namespace, u.Name, u.CreationTimestamp.UnixNano())
	}
	if i := plan.OwnerOf(claims); i >= 0 {
		return list[i]
	}
	return nil
}

// authoritativeOwner returns the oldest Authoritative membership among ms, nil when none.
func authoritativeOwner(ms []*iamv1alpha1.CipherscaleGroupMembership) *iamv1alpha1.CipherscaleGroupMembership {
	var auth []*iamv1alpha1.CipherscaleGroupMembership
	var claims []plan.Claim
	for _, m := range ms {
		if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative {
			auth = append(auth, m)
			claims = append(claims, claimOf(m.Namespace, m.Name, m.CreationTimestamp.UnixNano()))
		}
	}
	if i := plan.OwnerOf(claims); i >= 0 {
		return auth[i]
	}
	return nil
}

// groupMemberships returns the memberships of a group that count (not being deleted, not a
// conflicting newer Authoritative one) and the owner of its authoritative scope.
func (s *objectSet) groupMemberships(groupID string) (counting []*iamv1alpha1.CipherscaleGroupMembership, authoritative *iamv1alpha1.CipherscaleGroupMembership) {
	list := s.byGroup[plan.NormalizeID(groupID)]
	owner := authoritativeOwner(list)
	for _, m := range list {
		if !m.DeletionTimestamp.IsZero() {
			continue
		}
		if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && owner != m {
			continue
		}
		counting = append(counting, m)
	}
	if owner != nil && owner.DeletionTimestamp.IsZero() {
		authoritative = owner
	}
	return counting, authoritative
}

// resolvedMember is a member with its email resolved ("" while a userRef names no object).
type resolvedMember struct {
	spec  iamv1alpha1.Member
	email string
	user  *iamv1alpha1.CipherscaleUser
}

func (s *objectSet) resolveMembers(m *iamv1alpha1.CipherscaleGroupMembership) []resolvedMember {
	out := make([]resolvedMember, 0, len(m.Spec.Members))
	for _, mem := range m.Spec.Members {
		r := resolvedMember{spec: mem}
		if mem.UserRef == nil {
			r.email = cipherscale.NormalizeEmail(mem.Email)
		} else if u := s.userByKey[key(m.Namespace, mem.UserRef.Name)]; u != nil {
			r.user = u
			r.email = cipherscale.NormalizeEmail(u.Spec.Email)
		}
		out = append(out, r)
	}
	return out
}

func (s *objectSet) declares(m *iamv1alpha1.CipherscaleGroupMembership, email string) bool {
	for _, r := range s.resolveMembers(m) {
		if r.email != "" && r.email == email {
			return true
		}
	}
	return false
}

// pairFacts gathers the facts of the pair (email, group), leaving out exclude's declaration.
func (s *objectSet) pairFacts(email, groupID string, present bool, exclude plan.Source) plan.PairFacts {
	f := plan.PairFacts{Present: present}
	email = cipherscale.NormalizeEmail(email)
	gid := plan.NormalizeID(groupID)
	if owner := s.emailOwner(email); owner != nil && owner.DeletionTimestamp.IsZero() && owner.Spec.Groups != nil && userSource(owner) != exclude {
		f.UserAuthoritative = true
		for _, g := range *owner.Spec.Groups {
			if plan.NormalizeID(g) == gid {
				f.DeclaredBy = append(f.DeclaredBy, userSource(owner))
				break
			}
		}
	}
	counting, auth := s.groupMemberships(gid)
	f.GroupAuthoritative = auth != nil && membershipSource(auth) != exclude
	for _, m := range counting {
		if membershipSource(m) != exclude && s.declares(m, email) {
			f.DeclaredBy = append(f.DeclaredBy, membershipSource(m))
		}
	}
	return f
}

// userGroupChanges is the group changes a CipherscaleUser's reconciler makes (see world.go).
func (s *objectSet) userGroupChanges(u *iamv1alpha1.CipherscaleUser, live *cipherscale.User) (add, remove []string) {
	if u.Spec.Groups == nil {
		return nil, nil
	}
	present := map[string]bool{}
	for _, g := range live.Groups {
		present[plan.NormalizeID(g.ID)] = true
	}
	declared := map[string]bool{}
	for _, g := range *u.Spec.Groups {
		declared[plan.NormalizeID(g)] = true
	}
	for g := range declared {
		if !present[g] {
			add = append(add, g)
		}
	}
	for g := range present {
		if !declared[g] && plan.DecidePair(s.pairFacts(u.Spec.Email, g, true, "")) == plan.Remove {
			remove = append(remove, g)
		}
	}
	sort.Strings(add)
	sort.Strings(remove)
	return add, remove
}
