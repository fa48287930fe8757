// What a CipherscaleGroupMembership's pass would do (planMembership), and its deletion
// (planMembershipDelete).

package onboarding

import (
	"context"
	"fmt"
	"sort"
	"strings"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

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
