// What a CipherscaleUser's pass would do, in the operator's order (planUser), and its deletion
// (planUserDelete); the writes it would make are applied to the in-memory tenant, so that the
// objects planned after it see them.

package onboarding

import (
	"context"
	"fmt"
	"strings"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

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
	default:
		// Found by email: the operator's decision (decide.UserFound).
		switch decide.UserFound(trust, u, live, paused, pending) {
		case decide.FoundPausedUnseen:
			return blocked(iamv1alpha1.ReasonPaused, fmt.Sprintf("the tenant has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users: nothing of that user is shown, and no writes would be made", u.Namespace))
		case decide.FoundPaused:
		case decide.FoundRefused:
			return blocked(iamv1alpha1.ReasonAdoptionNotAllowed, fmt.Sprintf("the tenant already has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users; nothing would be written", u.Namespace))
		case decide.FoundOwnCreate:
			summary = append(summary, "record tenant user "+live.ID+" (created by an earlier attempt)")
		case decide.FoundNeverAdopt:
			return blocked(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf("the tenant already has a user with this email (%s) and adoptionPolicy is Never", live.ID))
		case decide.FoundAdopt:
			summary = append(summary, "adopt tenant user "+live.ID)
		}
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
