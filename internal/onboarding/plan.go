package onboarding

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// Annotations of the identity design (identity.md) that say an object already has its user or
// has a create in flight. Read as plain strings: plan understands them whether or not the
// operator it runs beside writes them yet.
const (
	annotationUserID        = "cipherscale.com/user-id"
	annotationCreatePending = "cipherscale.com/create-pending"
	// Reasons of the identity design, spelled as the operator spells them.
	reasonEmailMismatch  = "EmailMismatch"
	reasonAmbiguousEmail = "AmbiguousEmail"
)

// Input is what a plan is computed from.
type Input struct {
	// Users and Memberships are every object of the tenant as the cluster would hold them once
	// the manifests are applied: the manifests' objects over the cluster's.
	Users       []*iamv1alpha1.CipherscaleUser
	Memberships []*iamv1alpha1.CipherscaleGroupMembership
	// Show selects the objects to report, by "Kind/namespace/name"; nil reports all.
	Show map[string]bool
	// Tenant is every user of the tenant.
	Tenant []cipherscale.User
	// DefaultDeletionPolicy is the tenant's spec.defaultDeletionPolicy.
	DefaultDeletionPolicy iamv1alpha1.DeletionPolicy
	// Trust is the tenant's trust policy (plan.TenantTrust of the tenant object's
	// spec.adoption and spec.privileged). The zero value is the tenant's default: no namespace
	// may adopt users, grant privileged roles, manage privileged groups or be Authoritative.
	Trust plan.TrustPolicy
	// TenantUsable reports whether objects of a namespace may use the tenant (the
	// namespaceSelector of a ClusterCipherscaleTenant); nil: every namespace may.
	TenantUsable func(namespace string) bool
	// GroupRoles holds, by normalized group id, what members of the group inherit through their
	// groups (GET /tenants/users/{id}/roles?groupsOnly=true of a member). A group it does not
	// hold is privileged unless Trust lists the privileged groups, as the operator counts a
	// group whose roles it cannot tell.
	GroupRoles map[string][][]cipherscale.Role
}

// Kind of outcome of one object.
type Outcome int

// Outcomes, from quiet to loud.
const (
	// Unchanged: the operator would make no call and the object would be Ready.
	Unchanged Outcome = iota
	// Changes: the operator would act.
	Changes
	// Blocked: the operator would do nothing and the object would not be Ready (a conflict, a
	// stall, a pause): a person must act.
	Blocked
)

// ObjectPlan is what the operator would do with one object.
type ObjectPlan struct {
	Kind, Namespace, Name string
	// Email is the CipherscaleUser's email.
	Email   string
	Outcome Outcome
	// Summary is one line in the words of the events: "adopt tenant user ...", "roles +1 -0".
	Summary string
	// Details are further lines: which roles, groups and members.
	Details []string
}

// Result is the plan of every reported object.
type Result struct {
	Objects []ObjectPlan
	// Undeclared are the emails of tenant users no object of the tenant declares (sorted).
	Undeclared []string
}

// Counts returns how many objects would change and how many are blocked.
func (r Result) Counts() (unchanged, changes, blocked int) {
	for _, o := range r.Objects {
		switch o.Outcome {
		case Unchanged:
			unchanged++
		case Changes:
			changes++
		case Blocked:
			blocked++
		}
	}
	return
}

// planner carries the simulated tenant through the objects: each object's planned writes are
// applied to it, so that the objects planned later see them, as the operator's later reconciles
// would.
type planner struct {
	in Input
	// world is the operator's decisions (internal/decide) over the objects in memory.
	world   decide.World
	mem     *decide.Memory
	byEmail map[string]*cipherscale.User
	byID    map[string]*cipherscale.User
	// ambiguous holds the emails that several tenant users share, differing only in case.
	ambiguous map[string]bool
	names     map[string]string // role and group names by id
	// hasUser is true for the CipherscaleUsers that would be tied to a tenant user (a member
	// by userRef waits for that).
	hasUser map[string]bool
}

// Plan computes what the operator would do with each object, with the pure functions of
// internal/plan, writing nothing.
func Plan(in Input) Result {
	mem := decide.NewMemory(deref(in.Users), deref(in.Memberships))
	mem.Usable, mem.Inherited, mem.Types = in.TenantUsable, in.GroupRoles, roleTypes(in.Tenant)
	p := &planner{in: in, world: decide.World{R: mem, Trust: in.Trust}, mem: mem,
		byEmail: map[string]*cipherscale.User{}, byID: map[string]*cipherscale.User{}, ambiguous: map[string]bool{},
		names: map[string]string{}, hasUser: map[string]bool{}}
	if p.in.DefaultDeletionPolicy == "" {
		p.in.DefaultDeletionPolicy = iamv1alpha1.DeletionPolicyDelete
	}
	for i := range in.Tenant {
		u := copyUser(&in.Tenant[i])
		e := cipherscale.NormalizeEmail(u.Email)
		if p.byEmail[e] != nil {
			p.ambiguous[e] = true
		}
		p.byEmail[e] = u
		p.byID[cipherscale.NormalizeID(u.ID)] = u
		for _, r := range u.Roles {
			p.names[cipherscale.NormalizeID(r.ID)] = r.Name
		}
		for _, g := range u.Groups {
			p.names[cipherscale.NormalizeID(g.ID)] = g.Name
		}
	}
	var res Result
	users, memberships := mem.Users(), mem.Memberships()
	for i := range users {
		u := &users[i]
		op := p.planUser(u)
		if in.Show == nil || in.Show["CipherscaleUser/"+key(u.Namespace, u.Name)] {
			res.Objects = append(res.Objects, op)
		}
	}
	for i := range memberships {
		m := &memberships[i]
		op := p.planMembership(m)
		if in.Show == nil || in.Show["CipherscaleGroupMembership/"+key(m.Namespace, m.Name)] {
			res.Objects = append(res.Objects, op)
		}
	}
	res.Undeclared = p.undeclared()
	return res
}

func key(namespace, name string) string { return namespace + "/" + name }

func same(a, b metav1.Object) bool {
	return a.GetNamespace() == b.GetNamespace() && a.GetName() == b.GetName()
}

func deref[T any](in []*T) []T {
	out := make([]T, len(in))
	for i, o := range in {
		out[i] = *o
	}
	return out
}

// roleTypes are the role types the tenant's users show, by normalized id (as the operator's
// snapshot knows them).
func roleTypes(users []cipherscale.User) map[string]cipherscale.RoleType {
	out := map[string]cipherscale.RoleType{}
	for _, u := range users {
		for _, r := range u.Roles {
			if r.Type != "" {
				out[cipherscale.NormalizeID(r.ID)] = r.Type
			}
		}
	}
	return out
}

// must is for the decisions over objects in memory, which read nothing that can fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic("in-memory objects: " + err.Error())
	}
	return v
}

func copyUser(u *cipherscale.User) *cipherscale.User {
	c := *u
	c.Roles = append(cipherscale.RoleList(nil), u.Roles...)
	c.Groups = append([]cipherscale.Group(nil), u.Groups...)
	return &c
}

func (p *planner) name(id string) string {
	if n := p.names[plan.NormalizeID(id)]; n != "" {
		return n + " (" + plan.NormalizeID(id) + ")"
	}
	return plan.NormalizeID(id)
}

// recordedID is the tenant user id the object has recorded, "" when none.
func recordedID(u *iamv1alpha1.CipherscaleUser) string {
	if id := u.Annotations[annotationUserID]; id != "" {
		return id
	}
	return u.Status.ID
}

// lookup finds an object's tenant user as identity.md says: by its recorded id when it has one
// (a user whose email no longer matches is reported, never swapped; a recorded user that is gone
// while another has the email is not adopted), else by email (an email that several users share,
// differing only in case, is never guessed at). blocked is the reason and message when the object
// would stall.
func (p *planner) lookup(u *iamv1alpha1.CipherscaleUser) (live *cipherscale.User, blockReason, blockMsg string) {
	email := cipherscale.NormalizeEmail(u.Spec.Email)
	id := recordedID(u)
	if id != "" {
		if live := p.byID[cipherscale.NormalizeID(id)]; live != nil {
			if cipherscale.NormalizeEmail(live.Email) != email {
				return nil, reasonEmailMismatch, fmt.Sprintf("the tenant user %s recorded in the annotation %s has another email; the operator never swaps one user for another", id, annotationUserID)
			}
			return live, "", ""
		}
	}
	if p.ambiguous[email] {
		return nil, reasonAmbiguousEmail, "several tenant users have this email, differing only in case; the operator never picks one"
	}
	found := p.byEmail[email]
	if id != "" && found != nil && cipherscale.NormalizeID(found.ID) != cipherscale.NormalizeID(id) {
		return nil, iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf("the tenant user %s this object recorded is gone, and another user (%s) now has the email", id, found.ID)
	}
	return found, "", ""
}

// ownID reports what the operator decides of the id the object names (decideIdentity): its own
// record when status.id names it. A proof of identity without status.id (an object restored
// from a backup) is taken to verify: plan cannot check it without the operator's key
// derivation, and says so (proofAssumed).
func ownID(u *iamv1alpha1.CipherscaleUser) (id string, own, proofAssumed bool) {
	ann, st := u.Annotations[annotationUserID], u.Status.ID
	if ann == "" {
		return st, st != "", false
	}
	if st != "" && plan.NormalizeID(st) == plan.NormalizeID(ann) {
		return ann, true, false
	}
	if u.Annotations[iamv1alpha1.AnnotationUserIDProof] != "" {
		return ann, true, true
	}
	return ann, false, false
}

// mayManage is the operator's rule for a user found through a pending create mark: always from
// a namespace that may adopt; elsewhere only a pending user created after the object.
func (p *planner) mayManage(u *iamv1alpha1.CipherscaleUser, live *cipherscale.User) bool {
	return p.in.Trust.MayAdopt(u.Namespace) ||
		live.Status.Normalized() == cipherscale.StatusPending && plan.CreatedFor(u.CreationTimestamp.Time, live)
}

// usable reports whether objects of the namespace may use the tenant.
func (p *planner) usable(namespace string) bool {
	return must(p.world.R.TenantUsable(context.Background(), namespace))
}

// planUser is what a CipherscaleUser's pass would do, in the operator's order: the tenant, the
// identity it names, the email's owner, the privileged roles and groups it asks, the user it
// finds or creates (adoption), then the writes.
func (p *planner) planUser(u *iamv1alpha1.CipherscaleUser) ObjectPlan {
	ctx := context.Background()
	op := ObjectPlan{Kind: "CipherscaleUser", Namespace: u.Namespace, Name: u.Name, Email: u.Spec.Email}
	blocked := func(reason, msg string) ObjectPlan {
		op.Outcome, op.Summary = Blocked, reason+": "+msg
		return op
	}
	if !p.usable(u.Namespace) {
		return blocked(iamv1alpha1.ReasonInvalidTenant, "the tenant may not be used from namespace "+u.Namespace)
	}
	if !u.DeletionTimestamp.IsZero() {
		return p.planUserDelete(u, op)
	}
	trust := p.in.Trust
	id, own, proofAssumed := ownID(u)
	if id != "" && !own && !trust.MayAdopt(u.Namespace) {
		return blocked(iamv1alpha1.ReasonAdoptionNotAllowed, fmt.Sprintf("the annotation %s names a tenant user the operator did not record for this object, and namespace %s may not adopt existing users; nothing would be read or written", annotationUserID, u.Namespace))
	}
	if proofAssumed {
		op.Details = append(op.Details, "the identity proof of "+annotationUserID+" is assumed to verify (plan cannot check it)")
	}
	if owner := must(p.world.EmailOwnerFor(ctx, u, own)); owner != nil && !same(owner, u) {
		return blocked(iamv1alpha1.ReasonEmailConflict, "another CipherscaleUser manages this email (it recorded the tenant user's id, or was created earlier); this object would do nothing")
	}
	if refused := must(p.world.RefusedRoles(ctx, u.Namespace, u.Spec.Roles, nil)); len(refused) > 0 {
		return blocked(iamv1alpha1.ReasonNotAllowed, fmt.Sprintf("spec.roles grants or removes the privileged roles %s, which namespace %s may not manage; nothing would be written", strings.Join(refused, ", "), u.Namespace))
	}
	if refused := must(p.world.RefusedGroups(ctx, u.Namespace, u.Spec.Groups, nil)); len(refused) > 0 {
		return blocked(iamv1alpha1.ReasonNotAllowed, fmt.Sprintf("spec.groups puts the user in, or takes them out of, the privileged groups %s, which namespace %s may not manage; nothing would be written", strings.Join(refused, ", "), u.Namespace))
	}
	paused := u.Annotations[iamv1alpha1.AnnotationPaused] == "true"
	live, reason, msg := p.lookup(u)
	if reason != "" {
		return blocked(reason, msg)
	}
	k := key(u.Namespace, u.Name)
	if live == nil {
		if paused {
			return blocked(iamv1alpha1.ReasonPaused, "the user does not exist in the tenant and would be created")
		}
		groups := []string{}
		if u.Spec.Groups != nil {
			groups = plan.SortedSet(*u.Spec.Groups)
		}
		created := &cipherscale.User{Email: u.Spec.Email, Status: cipherscale.StatusPending}
		for _, g := range groups {
			created.Groups = append(created.Groups, cipherscale.Group{ID: g, Name: p.names[g]})
		}
		then := plan.PlanUser(&u.Spec, created, nil, nil)
		op.Outcome, op.Summary = Changes, "create and invite"
		if !then.Empty() {
			op.Summary += "; then " + then.String()
		}
		for _, g := range groups {
			op.Details = append(op.Details, "+ group "+p.name(g))
		}
		op.Details = append(op.Details, p.details(then)...)
		p.apply(created, then)
		p.byEmail[cipherscale.NormalizeEmail(u.Spec.Email)] = created
		p.hasUser[k] = true
		return op
	}

	var summary []string
	byID := id != "" && p.byID[cipherscale.NormalizeID(id)] == live
	pending := u.Annotations[annotationCreatePending] != ""
	switch {
	case byID && !own && !paused:
		summary = append(summary, "adopt tenant user "+live.ID+" (named by the annotation "+annotationUserID+")")
	case byID:
	case paused && !trust.MayAdopt(u.Namespace) && (!pending || !p.mayManage(u, live)):
		return blocked(iamv1alpha1.ReasonPaused, fmt.Sprintf("the tenant has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users: nothing of that user is shown, and no writes would be made", u.Namespace))
	case paused:
	case pending && !p.mayManage(u, live):
		return blocked(iamv1alpha1.ReasonAdoptionNotAllowed, fmt.Sprintf("the tenant already has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users; nothing would be written", u.Namespace))
	case pending:
		summary = append(summary, "record tenant user "+live.ID+" (created by an earlier attempt)")
	case !trust.MayAdopt(u.Namespace):
		return blocked(iamv1alpha1.ReasonAdoptionNotAllowed, fmt.Sprintf("the tenant already has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users; nothing would be written", u.Namespace))
	case u.Spec.AdoptionPolicy == iamv1alpha1.AdoptionPolicyNever:
		return blocked(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf("the tenant already has a user with this email (%s) and adoptionPolicy is Never", live.ID))
	default:
		summary = append(summary, "adopt tenant user "+live.ID)
	}
	if !live.TenantOwner() {
		if refused := must(p.world.RefusedRoles(ctx, u.Namespace, u.Spec.Roles, live.Roles)); len(refused) > 0 {
			return blocked(iamv1alpha1.ReasonNotAllowed, fmt.Sprintf("spec.roles removes the privileged roles %s the user holds, which namespace %s may not manage; nothing would be written", strings.Join(refused, ", "), u.Namespace))
		}
	}
	add, remove := must2(p.world.UserGroupChanges(ctx, u, live))
	if !live.IsOwner {
		if refused := must(p.world.RefusedGroups(ctx, u.Namespace, u.Spec.Groups, remove)); len(refused) > 0 {
			return blocked(iamv1alpha1.ReasonNotAllowed, fmt.Sprintf("the user would be put in, or taken out of, the privileged groups %s, which namespace %s may not manage; nothing would be written", strings.Join(refused, ", "), u.Namespace))
		}
	}
	up := plan.PlanUser(&u.Spec, live, add, remove)
	if own || byID && !paused || pending {
		p.hasUser[k] = true // a paused object keeps the id it recorded
	}
	if paused {
		if up.Empty() {
			return blocked(iamv1alpha1.ReasonPaused, "the tenant matches the spec; no writes would be made")
		}
		return blocked(iamv1alpha1.ReasonPaused, "the tenant differs from the spec ("+up.String()+"); no writes would be made")
	}
	p.hasUser[k] = true
	if !up.Empty() {
		summary = append(summary, up.String())
		op.Details = append(op.Details, p.details(up)...)
		p.apply(live, up)
	}
	if len(summary) > 0 {
		op.Outcome, op.Summary = Changes, strings.Join(summary, "; ")
	}
	if up.OwnerProtected && up.Withheld != "" {
		// The owner is read-only to the operator: a spec that differs from the owner's state
		// stalls (as the controller does), one that matches is unchanged.
		op.Outcome = Blocked
		op.Summary = iamv1alpha1.ReasonOwnerProtected + ": the tenant owner is read-only to the operator, and the spec differs from the owner's state (" + up.Withheld + ")"
	}
	if op.Outcome == Unchanged {
		op.Summary = "no change"
		if up.OwnerProtected {
			op.Summary = iamv1alpha1.ReasonOwnerProtected + ": the tenant owner matches the spec; the operator makes no change to it"
		}
		if up.UnknownStatus != "" {
			op.Summary += fmt.Sprintf(" (the API reports the unknown status %q: the active state is left alone)", up.UnknownStatus)
		}
	}
	return op
}

func must3[T, U, V any](a T, b U, c V, err error) (T, U, V) {
	if err != nil {
		panic("in-memory objects: " + err.Error())
	}
	return a, b, c
}

func must2[T, U any](a T, b U, err error) (T, U) {
	if err != nil {
		panic("in-memory objects: " + err.Error())
	}
	return a, b
}

// details lists the roles and groups a user plan adds and removes, by name.
func (p *planner) details(up plan.UserPlan) []string {
	var out []string
	if up.Roles != nil {
		for _, r := range up.Roles.AddedRoles {
			out = append(out, "+ role "+p.name(r))
		}
		for _, r := range up.Roles.RemovedRoles {
			out = append(out, "- role "+p.name(r))
		}
	}
	for _, g := range up.AddGroups {
		out = append(out, "+ group "+p.name(g))
	}
	for _, g := range up.RemoveGroups {
		out = append(out, "- group "+p.name(g))
	}
	return out
}

// apply makes a user plan's changes to the simulated tenant user.
func (p *planner) apply(u *cipherscale.User, up plan.UserPlan) {
	switch {
	case up.Reactivate:
		u.Status = cipherscale.StatusActive
	case up.Deactivate:
		u.Status = cipherscale.StatusInactive
	}
	if up.Profile != nil {
		if up.Profile.FirstName != nil {
			u.FirstName = *up.Profile.FirstName
		}
		if up.Profile.LastName != nil {
			u.LastName = *up.Profile.LastName
		}
		if up.Profile.Image != nil {
			u.Image = *up.Profile.Image
		}
	}
	if up.Roles != nil {
		added, removed := toSet(up.Roles.AddedRoles), toSet(up.Roles.RemovedRoles)
		var roles cipherscale.RoleList
		for _, r := range u.Roles {
			if !removed[plan.NormalizeID(r.ID)] {
				roles = append(roles, r)
			}
		}
		for id := range added {
			roles = append(roles, cipherscale.Role{ID: id, Name: p.names[id]})
		}
		u.Roles = roles
	}
	p.changeGroups(u, up.AddGroups, up.RemoveGroups)
}

func (p *planner) changeGroups(u *cipherscale.User, add, remove []string) {
	removed := toSet(remove)
	var groups []cipherscale.Group
	for _, g := range u.Groups {
		if !removed[plan.NormalizeID(g.ID)] {
			groups = append(groups, g)
		}
	}
	for _, g := range add {
		if !inGroup(u, g) {
			groups = append(groups, cipherscale.Group{ID: g, Name: p.names[plan.NormalizeID(g)]})
		}
	}
	u.Groups = groups
}

func toSet(ids []string) map[string]bool {
	s := make(map[string]bool, len(ids))
	for _, id := range ids {
		s[plan.NormalizeID(id)] = true
	}
	return s
}

func inGroup(u *cipherscale.User, groupID string) bool {
	for _, g := range u.Groups {
		if plan.NormalizeID(g.ID) == plan.NormalizeID(groupID) {
			return true
		}
	}
	return false
}

// planUserDelete is what finalizing a CipherscaleUser being deleted would do.
func (p *planner) planUserDelete(u *iamv1alpha1.CipherscaleUser, op ObjectPlan) ObjectPlan {
	if u.Annotations[iamv1alpha1.AnnotationPaused] == "true" {
		op.Outcome, op.Summary = Blocked, iamv1alpha1.ReasonPaused+": deletion waits until the cipherscale.com/paused annotation is removed"
		return op
	}
	policy := u.Spec.DeletionPolicy
	if policy == "" {
		policy = p.in.DefaultDeletionPolicy
	}
	id, own, _ := ownID(u)
	op.Outcome = Changes
	if id != "" && !own && !p.in.Trust.MayAdopt(u.Namespace) {
		op.Summary = iamv1alpha1.ReasonAdoptionNotAllowed + ": release the object without touching the tenant (the annotation " + annotationUserID + " is not the operator's record for it)"
		return op
	}
	owner := must(p.world.EmailOwnerFor(context.Background(), u, own))
	acts := owner != nil && same(owner, u) && id != ""
	live := p.byID[cipherscale.NormalizeID(id)] // finalization acts by the recorded id
	switch {
	case !acts:
		op.Summary = "release the object (it never managed a tenant user)"
	case policy == iamv1alpha1.DeletionPolicyOrphan:
		op.Summary = "orphan: leave tenant user " + id + " in the tenant (deletionPolicy Orphan)"
	case live == nil:
		op.Summary = "release the object (tenant user " + id + " is already gone)"
	case cipherscale.NormalizeEmail(live.Email) != cipherscale.NormalizeEmail(u.Spec.Email):
		op.Outcome, op.Summary = Blocked, reasonEmailMismatch+": the tenant user "+id+" recorded in the annotation "+annotationUserID+" has another email, so it is left alone"
	case live.TenantOwner():
		op.Summary = iamv1alpha1.ReasonOwnerProtected + ": leave tenant user " + live.ID + " alone (the tenant owner is never deleted or deactivated)"
	case policy == iamv1alpha1.DeletionPolicyDeactivate:
		if live.Status.Normalized() != cipherscale.StatusInactive {
			op.Summary = "deactivate tenant user " + live.ID + " (deletionPolicy Deactivate)"
			live.Status = cipherscale.StatusInactive
		} else {
			op.Summary = "release the object (tenant user " + live.ID + " is already inactive)"
		}
	default:
		op.Summary = "delete tenant user " + live.ID
		delete(p.byEmail, cipherscale.NormalizeEmail(live.Email))
		delete(p.byID, cipherscale.NormalizeID(live.ID))
	}
	return op
}

// refusedMembership returns the reason and message that refuse a whole membership before it
// reads anything (an Authoritative one its namespace may not have, a privileged group its
// namespace may not manage), "" when none does.
func (p *planner) refusedMembership(m *iamv1alpha1.CipherscaleGroupMembership) (reason, msg string) {
	trust := p.in.Trust
	if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && !trust.MayBeAuthoritative(m.Namespace) {
		return iamv1alpha1.ReasonNotAllowed, "an Authoritative membership removes members nothing declares, and namespace " + m.Namespace + " may not have Authoritative memberships; nothing would be written"
	}
	if !trust.Privileged.Allows(m.Namespace) && must(p.world.PrivilegedGroup(context.Background(), m.Spec.GroupID)) {
		return iamv1alpha1.ReasonNotAllowed, "this membership's group is privileged, which namespace " + m.Namespace + " may not manage; nothing would be written"
	}
	return "", ""
}

// conflictWinner returns the older Authoritative membership of the group when m is a newer
// Authoritative one, else nil.
func (p *planner) conflictWinner(m *iamv1alpha1.CipherscaleGroupMembership) *iamv1alpha1.CipherscaleGroupMembership {
	if m.Spec.Policy != iamv1alpha1.MembershipPolicyAuthoritative {
		return nil
	}
	owner := decide.AuthoritativeOwner(must(p.mem.MembershipsOfGroup(context.Background(), m.Spec.GroupID)), p.in.Trust)
	if owner != nil && !same(owner, m) {
		return owner
	}
	return nil
}

func (p *planner) planMembership(m *iamv1alpha1.CipherscaleGroupMembership) ObjectPlan {
	ctx := context.Background()
	op := ObjectPlan{Kind: "CipherscaleGroupMembership", Namespace: m.Namespace, Name: m.Name}
	gid := plan.NormalizeID(m.Spec.GroupID)
	if !p.usable(m.Namespace) {
		op.Outcome, op.Summary = Blocked, iamv1alpha1.ReasonInvalidTenant+": the tenant may not be used from namespace "+m.Namespace
		return op
	}
	if !m.DeletionTimestamp.IsZero() {
		return p.planMembershipDelete(m, op)
	}
	if reason, msg := p.refusedMembership(m); reason != "" {
		op.Outcome, op.Summary = Blocked, reason+": "+msg
		return op
	}
	if p.conflictWinner(m) != nil {
		op.Outcome, op.Summary = Blocked, iamv1alpha1.ReasonGroupConflict+": another Authoritative membership, created earlier, owns this group; this object would do nothing"
		return op
	}
	members := must(p.world.ResolveMembers(ctx, m))
	// What the membership may act on (plan.TrustPolicy.MayActOnMember), as the operator decides
	// it: a member whose email a CipherscaleUser manages is that user's reconciler's to write.
	refused, refusedManaged, refusedUndeclared := must3(p.world.Refusals(ctx, m, members))
	declared := map[string]bool{}
	var added, removed, waiting, notFound []string
	ownerLeft := false
	for i, r := range members {
		if refused[i] {
			continue
		}
		var live *cipherscale.User
		if r.Email != "" {
			live = p.byEmail[r.Email]
		}
		if r.User != nil || r.Spec.UserRef != nil {
			// Its CipherscaleUser's pass (planned above) writes the pair: the membership waits
			// for that user until it is in the group.
			declared[r.Email] = r.Email != ""
			if r.User == nil || !p.hasUser[key(r.User.Namespace, r.User.Name)] || live == nil || !inGroup(live, gid) && !live.TenantOwner() {
				name := r.Email
				if r.Spec.UserRef != nil {
					name = r.Spec.UserRef.Name
				}
				waiting = append(waiting, name)
			}
			continue
		}
		switch {
		case live == nil:
			notFound = append(notFound, r.Email)
		case live.TenantOwner() && !inGroup(live, gid):
			declared[r.Email] = true
			ownerLeft = true
		default:
			declared[r.Email] = true
			if !inGroup(live, gid) {
				added = append(added, r.Email)
				p.changeGroups(live, []string{gid}, nil)
			}
		}
	}
	if m.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative {
		var emails []string
		for e, u := range p.byEmail {
			if inGroup(u, gid) && !declared[e] && !u.TenantOwner() {
				emails = append(emails, e)
			}
		}
		sort.Strings(emails)
		for _, e := range emails {
			if owner := must(p.world.EmailOwner(ctx, e)); owner != nil && owner.DeletionTimestamp.IsZero() {
				continue // its CipherscaleUser's pass writes this pair
			}
			if plan.DecidePair(must(p.world.PairFacts(ctx, e, gid, true, ""))) == plan.Remove {
				removed = append(removed, e)
				p.changeGroups(p.byEmail[e], nil, []string{gid})
			}
		}
	}
	var summary []string
	if len(added) > 0 || len(removed) > 0 {
		op.Outcome = Changes
		summary = append(summary, fmt.Sprintf("members +%d -%d of group %s", len(added), len(removed), p.name(gid)))
		for _, e := range added {
			op.Details = append(op.Details, "+ member "+e)
		}
		for _, e := range removed {
			op.Details = append(op.Details, "- member "+e)
		}
	}
	switch {
	case refusedManaged > 0:
		op.Outcome = Blocked
		summary = append(summary, fmt.Sprintf("%s: %d members are users that a CipherscaleUser of another namespace manages, and namespace %s may not change their groups", iamv1alpha1.ReasonNotAllowed, refusedManaged, m.Namespace))
	case refusedUndeclared > 0:
		op.Outcome = Blocked
		summary = append(summary, fmt.Sprintf("%s: %d email members have no CipherscaleUser, and namespace %s may not adopt users", iamv1alpha1.ReasonAdoptionNotAllowed, refusedUndeclared, m.Namespace))
	}
	if len(waiting) > 0 {
		op.Outcome = max(op.Outcome, Blocked)
		summary = append(summary, fmt.Sprintf("%s: %d members wait for their CipherscaleUser (%s)", iamv1alpha1.ReasonWaitingForUser, len(waiting), strings.Join(first(waiting, 5), ", ")))
	}
	if len(notFound) > 0 {
		op.Outcome = Blocked
		summary = append(summary, fmt.Sprintf("%s: %d members have no user in the tenant (%s)", iamv1alpha1.ReasonUserNotFound, len(notFound), strings.Join(first(notFound, 5), ", ")))
	}
	if ownerLeft {
		summary = append(summary, iamv1alpha1.ReasonOwnerProtected+": the tenant owner is not added (the owner is read-only to the operator)")
	}
	op.Summary = strings.Join(summary, "; ")
	if op.Summary == "" {
		op.Summary = "no change"
	}
	return op
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), "...")
}

// planMembershipDelete is what finalizing a membership being deleted would do.
func (p *planner) planMembershipDelete(m *iamv1alpha1.CipherscaleGroupMembership, op ObjectPlan) ObjectPlan {
	ctx := context.Background()
	op.Outcome, op.Summary = Changes, "release the object"
	winner := p.conflictWinner(m)
	refused := false
	if m.Spec.DeletionPolicy != iamv1alpha1.MembershipDeletionPolicyOrphan && winner == nil {
		reason, _ := p.refusedMembership(m)
		refused = reason != ""
	}
	if m.Spec.DeletionPolicy == iamv1alpha1.MembershipDeletionPolicyOrphan || winner != nil || refused {
		op.Summary += " (its members stay in the group)"
		return op
	}
	gid := plan.NormalizeID(m.Spec.GroupID)
	var removed []string
	for _, r := range must(p.world.ResolveMembers(ctx, m)) {
		if r.Email == "" {
			continue
		}
		var owner *iamv1alpha1.CipherscaleUser
		if r.Spec.UserRef == nil {
			owner = must(p.world.EmailOwner(ctx, r.Email))
		}
		if !decide.MayActOnMember(p.in.Trust, m, decide.ManagedIn(m, r.Spec, owner)) {
			continue
		}
		u := p.byEmail[r.Email]
		if u == nil || !inGroup(u, gid) || u.TenantOwner() {
			continue
		}
		if plan.DecideRelease(must(p.world.PairFacts(ctx, r.Email, gid, true, decide.MembershipSource(m))), true) == plan.Remove {
			removed = append(removed, r.Email)
			p.changeGroups(u, nil, []string{gid})
		}
	}
	if len(removed) > 0 {
		op.Summary = fmt.Sprintf("remove %d members it declared from group %s, then release the object", len(removed), p.name(gid))
		for _, e := range removed {
			op.Details = append(op.Details, "- member "+e)
		}
	}
	return op
}

// undeclared returns the emails of tenant users that no CipherscaleUser names and no membership
// lists as an email member.
func (p *planner) undeclared() []string {
	declared := map[string]bool{}
	for _, u := range p.mem.Users() {
		declared[cipherscale.NormalizeEmail(u.Spec.Email)] = true
	}
	for _, m := range p.mem.Memberships() {
		for _, mem := range m.Spec.Members {
			if mem.UserRef == nil {
				declared[cipherscale.NormalizeEmail(mem.Email)] = true
			}
		}
	}
	var out []string
	for i := range p.in.Tenant {
		if e := cipherscale.NormalizeEmail(p.in.Tenant[i].Email); !declared[e] {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// Render writes the plan for a person: one line per object that would change or is blocked,
// its details indented, then a summary line.
func Render(w io.Writer, r Result) {
	unchanged, changes, blocked := r.Counts()
	for _, o := range r.Objects {
		if o.Outcome == Unchanged {
			continue
		}
		mark := "~"
		if o.Outcome == Blocked {
			mark = "!"
		}
		who := o.Kind + " " + key(o.Namespace, o.Name)
		if o.Email != "" {
			who += " (" + o.Email + ")"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, who, o.Summary)
		for _, d := range o.Details {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
	if n := len(r.Undeclared); n > 0 {
		fmt.Fprintf(w, "  %d tenant users are declared by no object and are left alone: %s\n", n, strings.Join(first(r.Undeclared, 20), ", "))
	}
	if changes == 0 && blocked == 0 {
		fmt.Fprintf(w, "No changes: the tenant matches all %d objects.\n", unchanged)
		return
	}
	fmt.Fprintf(w, "Plan: %d objects to change, %d blocked (a person must act), %d unchanged.\n", changes, blocked, unchanged)
}
