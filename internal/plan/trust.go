package plan

import (
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// NamespaceRule says whether a tenant allows something from a namespace. The nil rule allows
// nothing.
type NamespaceRule func(namespace string) bool

// Allows reports whether the rule allows the namespace.
func (r NamespaceRule) Allows(namespace string) bool { return r != nil && r(namespace) }

// ParseNamespaces reads the value of a namespace flag: comma-separated namespace names, "*" for
// every namespace, "" for none.
func ParseNamespaces(value string) (NamespaceRule, error) {
	names := map[string]bool{}
	for _, n := range strings.Split(value, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
		case n == "*":
			return func(string) bool { return true }, nil
		case len(n) > 63 || strings.ToLower(n) != n || strings.ContainsAny(n, "*/ "):
			return nil, fmt.Errorf("%q is not a namespace name", n)
		default:
			names[n] = true
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	return func(ns string) bool { return names[ns] }, nil
}

// TrustPolicy is what a tenant allows the objects of a namespace to do beyond managing the users
// they create: adopt users the operator did not create, and grant privileged roles or own a
// group's members (Authoritative memberships). The zero value allows neither, from anywhere.
// A tenant object fills it with TenantTrust.
type TrustPolicy struct {
	// Adoption: the namespaces whose objects may adopt tenant users the operator did not create.
	Adoption NamespaceRule
	// Privileged: the namespaces whose objects may grant or remove privileged roles and be
	// Authoritative for a group.
	Privileged NamespaceRule
	// PrivilegedRoles are the ids of the privileged roles. nil: every role of type OWNER or
	// ADMIN, and every role whose type the operator cannot see.
	PrivilegedRoles []string
	// PrivilegedGroups are the ids of the privileged groups. nil: a group is privileged unless
	// the roles its members inherit show that it carries no privileged role (PrivilegedGroup).
	PrivilegedGroups []string
}

// AllowAll is the policy of a tenant that trusts every namespace.
func AllowAll() TrustPolicy {
	all := func(string) bool { return true }
	return TrustPolicy{Adoption: all, Privileged: all}
}

// MayAdopt reports whether objects of the namespace may adopt tenant users the operator did not
// create.
func (p TrustPolicy) MayAdopt(namespace string) bool { return p.Adoption.Allows(namespace) }

// MayBeAuthoritative reports whether memberships of the namespace may be Authoritative.
func (p TrustPolicy) MayBeAuthoritative(namespace string) bool {
	return p.Privileged.Allows(namespace)
}

// PrivilegedRole reports whether a role is privileged. types holds the role types the operator knows
// (by normalized id); a role it does not know the type of is privileged unless PrivilegedRoles
// lists the privileged roles explicitly.
func (p TrustPolicy) PrivilegedRole(roleID string, types map[string]cipherscale.RoleType) bool {
	id := NormalizeID(roleID)
	if p.PrivilegedRoles != nil {
		for _, r := range p.PrivilegedRoles {
			if NormalizeID(r) == id {
				return true
			}
		}
		return false
	}
	t, known := types[id]
	if !known || t == "" {
		return true
	}
	switch cipherscale.RoleType(strings.ToUpper(string(t))) {
	case cipherscale.RoleTypeOwner, cipherscale.RoleTypeAdmin:
		return true
	}
	return false
}

// RefusedRoles returns the privileged roles that an object of the namespace may not manage:
// those spec.roles (nil when the object does not manage roles) grants, and those the user holds
// that spec.roles would remove. Sorted, normalized; nil when the namespace is allowed.
func (p TrustPolicy) RefusedRoles(namespace string, spec *[]string, held []cipherscale.Role, types map[string]cipherscale.RoleType) []string {
	if spec == nil || p.Privileged.Allows(namespace) {
		return nil
	}
	all := map[string]cipherscale.RoleType{}
	for k, v := range types {
		all[k] = v
	}
	for _, r := range held {
		if r.Type != "" {
			all[NormalizeID(r.ID)] = r.Type
		}
	}
	var heldIDs []string
	for _, r := range held {
		heldIDs = append(heldIDs, r.ID)
	}
	_, removed := Diff(*spec, heldIDs)
	var refused []string
	for _, id := range append(SortedSet(*spec), removed...) {
		if p.PrivilegedRole(id, all) {
			refused = append(refused, NormalizeID(id))
		}
	}
	refused = SortedSet(refused)
	if len(refused) == 0 {
		return nil
	}
	return refused
}

// PrivilegedGroup reports whether a group is privileged: a CipherscaleUser's spec.groups or a
// membership's groupId naming it needs a privileged namespace. When PrivilegedGroups is set,
// exactly the groups it lists are. Otherwise the API is the witness: it has no list of a
// group's roles, but GET /tenants/users/{id}/roles?groupsOnly=true tells the roles a user
// inherits through all of their groups. inherited holds such answers, one per member of the
// group that was read; types the role types the operator knows (by normalized id). A group is
// not privileged only when some member's inherited roles hold no privileged role: the group's
// roles are among them. A group no member was read of, or whose members all inherit a
// privileged role (through it or another of their groups: the answer does not say which), is
// privileged: what cannot be told is privileged, as for roles.
func (p TrustPolicy) PrivilegedGroup(groupID string, inherited [][]cipherscale.Role, types map[string]cipherscale.RoleType) bool {
	id := NormalizeID(groupID)
	if p.PrivilegedGroups != nil {
		for _, g := range p.PrivilegedGroups {
			if NormalizeID(g) == id {
				return true
			}
		}
		return false
	}
	for _, roles := range inherited {
		known := map[string]cipherscale.RoleType{}
		for k, v := range types {
			known[k] = v
		}
		for _, r := range roles {
			if r.Type != "" {
				known[NormalizeID(r.ID)] = r.Type
			}
		}
		privileged := false
		for _, r := range roles {
			if p.PrivilegedRole(r.ID, known) {
				privileged = true
				break
			}
		}
		if !privileged {
			return false
		}
	}
	return true
}

// RefusedGroups returns the privileged groups an object of the namespace may not manage: those
// spec.groups names (nil when the object does not manage groups), and those the membership rule
// would take the user out of (removed). privileged says whether a group is privileged
// (PrivilegedGroup). Sorted, normalized; nil when the namespace is privileged or none is refused.
func (p TrustPolicy) RefusedGroups(namespace string, spec *[]string, removed []string, privileged func(groupID string) bool) []string {
	if p.Privileged.Allows(namespace) {
		return nil
	}
	var named []string
	if spec != nil {
		named = append(named, *spec...)
	}
	var refused []string
	for _, id := range SortedSet(append(named, removed...)) {
		if privileged(id) {
			refused = append(refused, NormalizeID(id))
		}
	}
	refused = SortedSet(refused)
	if len(refused) == 0 {
		return nil
	}
	return refused
}

// MemberFacts are what decides whether a membership may act on one of its members.
type MemberFacts struct {
	// Namespace is the membership's namespace.
	Namespace string
	// TenantUsable: the namespace may use the tenant the membership names (its reference is
	// not InvalidTenant).
	TenantUsable bool
	// PrivilegedGroup: the membership's group is privileged (PrivilegedGroup).
	PrivilegedGroup bool
	// ManagedIn is the namespace of the CipherscaleUser that manages the member's email (a
	// userRef names one of the membership's own namespace); "" when no CipherscaleUser does.
	ManagedIn string
}

// MayActOnMember is the rule of memberships, the same as that of CipherscaleUsers: a
// membership puts a person in its group (or takes them out) only through a tenant its
// namespace may use, for a privileged group only from a privileged namespace, and then only a
// person its own namespace manages (a CipherscaleUser of that namespace, by userRef or by
// email), an undeclared person (no CipherscaleUser) from a namespace that may adopt, or anyone
// from a privileged namespace. A user another namespace manages is never acted on from
// anywhere else. What a membership may not act on it does not declare: no reconciler writes
// that pair for it.
func (p TrustPolicy) MayActOnMember(f MemberFacts) bool {
	privileged := p.Privileged.Allows(f.Namespace)
	switch {
	case !f.TenantUsable:
		return false
	case f.PrivilegedGroup && !privileged:
		return false
	case privileged:
		return true
	case f.ManagedIn != "":
		return f.ManagedIn == f.Namespace
	default:
		return p.MayAdopt(f.Namespace)
	}
}

// CreationSkew is how much earlier than its CipherscaleUser a tenant user may have been created
// and still be taken as created for it: the clocks of the API and of the cluster differ.
const CreationSkew = 5 * time.Minute

// CreatedFor reports whether a tenant user may have been created for an object created at
// objectCreated: it was created after it. A recorded id or a pending create mark that the
// operator did not write itself (anyone who may edit the object may write them) proves nothing
// else: a user created before the object is an adoption.
func CreatedFor(objectCreated time.Time, u *cipherscale.User) bool {
	return u != nil && !u.CreatedAt.IsZero() && !u.CreatedAt.Before(objectCreated.Add(-CreationSkew))
}

// InvitationWindow is the window of the invitation cap.
const InvitationWindow = 24 * time.Hour

// InvitationCap decides whether one more invitation may be sent now, given the send times
// recorded (any order) and the cap per InvitationWindow (max <= 0: no cap). When it may not,
// until is when the oldest counted send leaves the window.
func InvitationCap(sent []time.Time, limit int, now time.Time) (ok bool, until time.Time) {
	if limit <= 0 {
		return true, time.Time{}
	}
	recent := RecentSends(sent, limit, now)
	if len(recent) < limit {
		return true, time.Time{}
	}
	return false, recent[len(recent)-limit].Add(InvitationWindow)
}

// RecentSends returns the send times within the window before now, oldest first, at most keep
// of them (the newest).
func RecentSends(sent []time.Time, keep int, now time.Time) []time.Time {
	var out []time.Time
	for _, t := range sent {
		if now.Sub(t) < InvitationWindow {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	if keep > 0 && len(out) > keep {
		out = out[len(out)-keep:]
	}
	return out
}

// NamespaceLabels returns the labels of a namespace; nil when they are not known (a failed
// read). Every namespace has at least the label kubernetes.io/metadata.name, so nil never means
// "no labels": a namespace whose labels are not known is selected by no selector but the empty
// one (which selects every namespace without reading any): a failed read never widens trust,
// whatever the selector (NotIn and DoesNotExist included).
type NamespaceLabels func(namespace string) map[string]string

// TenantTrust is the trust policy of a tenant object: kind is KindClusterCipherscaleTenant or
// KindCipherscaleTenant, tenantNamespace the namespace of a CipherscaleTenant, adoption and
// privileged its spec (nil when omitted), labelsOf the labels of the namespaces.
//
//   - A ClusterCipherscaleTenant: the namespaces spec.adoption.namespaceSelector selects may
//     adopt (omitted: none); those spec.privileged.namespaceSelector selects may grant privileged
//     roles and be Authoritative (omitted: none).
//   - A CipherscaleTenant: its own namespace may adopt (whoever holds its Secret holds the key
//     anyway); it is privileged unless spec.privileged is given and its namespaceSelector does
//     not select it. No other namespace may do either.
//
// In both, spec.privileged.roles lists the privileged roles (omitted or empty: the OWNER and
// ADMIN roles and those whose type cannot be seen), and spec.privileged.groups the privileged
// groups (omitted: those that carry a privileged role, or whose roles cannot be told; a list,
// even empty: exactly those). A selector that is not valid selects nothing.
func TenantTrust(kind iamv1alpha1.TenantKind, tenantNamespace string, adoption *iamv1alpha1.AdoptionSpec, privileged *iamv1alpha1.PrivilegedSpec, labelsOf NamespaceLabels) TrustPolicy {
	var p TrustPolicy
	if privileged != nil && len(privileged.Roles) > 0 {
		p.PrivilegedRoles = append([]string(nil), privileged.Roles...)
	}
	if privileged != nil && privileged.Groups != nil {
		p.PrivilegedGroups = append([]string{}, *privileged.Groups...)
	}
	switch kind {
	case iamv1alpha1.KindClusterCipherscaleTenant:
		if adoption != nil {
			p.Adoption = selectorRule(adoption.NamespaceSelector, labelsOf)
		}
		if privileged != nil {
			p.Privileged = selectorRule(privileged.NamespaceSelector, labelsOf)
		}
	case iamv1alpha1.KindCipherscaleTenant:
		own := func(ns string) bool { return ns == tenantNamespace }
		p.Adoption = own
		p.Privileged = own
		if privileged != nil {
			sel := selectorRule(privileged.NamespaceSelector, labelsOf)
			p.Privileged = func(ns string) bool { return own(ns) && sel.Allows(ns) }
		}
	}
	return p
}

// SelectorRule is the rule of a namespace selector, as trust and a ClusterCipherscaleTenant's
// namespaceSelector read it (selectorRule).
func SelectorRule(selector *metav1.LabelSelector, labelsOf NamespaceLabels) NamespaceRule {
	return selectorRule(selector, labelsOf)
}

// selectorRule is the rule of a namespace selector: nil (none) when it is omitted or not valid;
// {} selects every namespace.
func selectorRule(selector *metav1.LabelSelector, labelsOf NamespaceLabels) NamespaceRule {
	if selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil
	}
	return func(ns string) bool {
		if sel.Empty() {
			return true
		}
		var set map[string]string
		if labelsOf != nil {
			set = labelsOf(ns)
		}
		if set == nil {
			return false
		}
		return sel.Matches(labels.Set(set))
	}
}
