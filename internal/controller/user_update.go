// Update: the tenant user a CipherscaleUser's pass found is brought to the spec: the plan's
// calls in order, the memberships woken, the invitation resent when due, then the status.

package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// update brings the tenant user the pass found (seen) to the spec: the privileged roles and
// groups it holds, its recorded id, the plan (package plan), its writes, its invitation, then
// the status. A paused object reports the plan and writes nothing.
func (s *userScope) update(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, idn identity, seen observed, paused bool) (ctrl.Result, error) {
	gen := obj.Generation
	conds := &obj.Status.Conditions
	live, readAt, isNew := seen.user, seen.readAt, seen.created
	if !live.TenantOwner() {
		// Privileged roles the user holds and spec.roles would remove.
		if res, stop, err := s.refused(s.refusedRoles(ctx, obj, live.Roles)); stop {
			return res, err
		}
	}
	if !paused && (obj.Annotations[iamv1alpha1.AnnotationUserID] == "" || idn.resign && plan.NormalizeID(idn.id) == plan.NormalizeID(live.ID)) {
		// An object an earlier version reconciled has its id in status only, or no proof, or a
		// proof made with a key since rotated: record it, with a proof, where it survives a
		// restore.
		if err := s.record(ctx, obj, live.ID); err != nil {
			return ctrl.Result{}, err
		}
	}

	add, remove, err := s.world().userGroupChanges(ctx, obj, live)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !live.IsOwner {
		// Privileged groups the membership rule would take the user out of.
		if res, stop, err := s.refused(s.refusedGroups(ctx, obj, remove)); stop {
			return res, err
		}
	}
	p := plan.PlanUser(&obj.Spec, live, add, remove)
	s.log.V(1).Info("Planned", "plan", p.String())

	if paused {
		obj.Status.State = plan.StateOf(live.Status)
		setTenantRefs(&obj.Status, live)
		if p.Empty() {
			markReady(conds, gen, iamv1alpha1.ReasonPaused, "Paused: the tenant matches the spec; no writes are made")
		} else {
			markNotReady(conds, gen, iamv1alpha1.ReasonPaused, "Paused: the tenant differs from the spec: "+p.String())
		}
		obj.Status.LastSyncTime = timePtr(readAt)
		s.settle(gen)
		return s.resyncResult(), nil
	}

	drift := !p.Empty() && !isNew && obj.Status.ObservedGeneration == gen && isReady(obj.Status.Conditions)
	applied, err := s.apply(ctx, obj, live.ID, p, !isNew)
	if err != nil {
		if errors.Is(err, tenant.ErrUserGone) {
			// Deleted in the tenant during this pass: the next pass reads it by id and creates
			// it again. The workqueue's backoff spaces the passes.
			markReconciling(conds, gen, iamv1alpha1.ReasonUpdating, "The tenant user was deleted while it was being updated")
			return ctrl.Result{}, err
		}
		return s.fail(err)
	}
	s.notifyMemberships(ctx, obj, p)
	if drift && !applied.Empty() {
		driftCorrections.WithLabelValues("CipherscaleUser").Inc()
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventDriftCorrected, "Correct", "Corrected drift in the tenant: %s", applied.String())
	}

	// The snapshot now holds the result of the writes.
	cur, _, err := s.tenant.Get(ctx, live.ID, false)
	if err == nil {
		live = cur
		var next time.Duration
		if next, err = s.invitation(ctx, obj, live); err == nil {
			return s.finish(obj, p, live, readAt, next), nil
		}
	}
	if errors.Is(err, tenant.ErrUserGone) {
		// Deleted in the tenant during this pass: the next pass reads it by id and creates it
		// again. The workqueue's backoff spaces the passes.
		markReconciling(conds, gen, iamv1alpha1.ReasonUpdating, "The tenant user was deleted while it was being updated")
		return ctrl.Result{}, err
	}
	return s.fail(err)
}

// finish ends a pass whose writes were made: the status says what the tenant holds now.
func (s *userScope) finish(obj *iamv1alpha1.CipherscaleUser, p plan.UserPlan, live *cipherscale.User, readAt time.Time, next time.Duration) ctrl.Result {
	gen := obj.Generation
	conds := &obj.Status.Conditions

	obj.Status.State = plan.StateOf(live.Status)
	setTenantRefs(&obj.Status, live)
	obj.Status.LastSyncTime = timePtr(readAt)
	s.settle(gen)
	switch {
	case p.OwnerProtected && p.Withheld != "":
		return s.stall(iamv1alpha1.ReasonOwnerProtected, "The tenant owner is read-only to the operator, and the spec differs from the owner's state ("+p.Withheld+"): no change is made; match the spec to the owner, or remove it")
	case p.OwnerProtected:
		markReady(conds, gen, iamv1alpha1.ReasonOwnerProtected, "The tenant owner matches the spec; the owner is read-only to the operator, which makes no change to it")
	case p.UnknownStatus != "":
		markReady(conds, gen, iamv1alpha1.ReasonUpToDate, fmt.Sprintf("In sync, except the active state: the API reports the unknown status %q", p.UnknownStatus))
	default:
		markReady(conds, gen, iamv1alpha1.ReasonUpToDate, "The tenant user matches the spec")
	}
	res := s.resyncResult()
	if next > 0 && next < res.RequeueAfter {
		res.RequeueAfter = next
	}
	return res
}

// apply makes the plan's calls in order, with an event for each when events is true. It returns
// the plan as applied: without the groups only memberships declare that the tenant refused as
// unknown (their memberships report them).
func (s *userScope) apply(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, id string, p plan.UserPlan, events bool) (applied plan.UserPlan, err error) {
	applied = p
	if p.Empty() {
		return applied, nil
	}
	event := func(reason, action, note string, args ...any) {
		if events {
			s.event(corev1.EventTypeNormal, reason, action, note, args...)
		}
	}
	logger := s.log
	if p.Reactivate {
		logger.Info("Reactivating tenant user")
		if err := s.tenant.Reactivate(ctx, id); err != nil {
			return applied, fmt.Errorf("reactivating user %s: %w", id, err)
		}
		event(iamv1alpha1.EventReactivated, "Reactivate", "Reactivated tenant user %s", id)
	}
	if p.Profile != nil {
		logger.Info("Updating profile")
		if err := s.tenant.UpdateProfile(ctx, id, *p.Profile); err != nil {
			return applied, fmt.Errorf("updating profile of user %s: %w", id, err)
		}
		event(iamv1alpha1.EventProfileUpdated, "UpdateProfile", "Updated the profile of tenant user %s", id)
	}
	if p.Roles != nil {
		logger.Info("Patching roles", "added", len(p.Roles.AddedRoles), "removed", len(p.Roles.RemovedRoles))
		if err := s.tenant.PatchRoles(ctx, id, *p.Roles); err != nil {
			return applied, fmt.Errorf("patching roles of user %s: %w", id, err)
		}
		event(iamv1alpha1.EventRolesUpdated, "PatchRoles", "Roles of tenant user %s: added %v, removed %v", id, p.Roles.AddedRoles, p.Roles.RemovedRoles)
	}
	if len(p.AddGroups) > 0 || len(p.RemoveGroups) > 0 {
		logger.Info("Updating groups", "added", len(p.AddGroups), "removed", len(p.RemoveGroups))
		own, theirs := splitGroups(obj.Spec.Groups, p.AddGroups)
		// Groups only memberships declare that the tenant has reported on a user ride in the call
		// for the object's own groups; should that call answer 404 (one was deleted since), the
		// own groups go alone and those groups one by one, like the others.
		var seen []string
		if len(own) > 0 {
			theirs = slices.DeleteFunc(theirs, func(g string) bool {
				if s.tenant.GroupSeen(g) {
					seen = append(seen, g)
					return true
				}
				return false
			})
		}
		added := append(slices.Clip(own), seen...)
		err := s.tenant.AddToGroups(ctx, id, added)
		if len(seen) > 0 && cipherscale.IsNotFound(err) && !errors.Is(err, tenant.ErrUserGone) {
			added, theirs = own, append(theirs, seen...)
			err = s.tenant.AddToGroups(ctx, id, own)
		}
		if err != nil {
			return applied, fmt.Errorf("adding user %s to groups: %w", id, err)
		}
		// The other groups only memberships declare are added one by one: an unknown one is the
		// membership's mistake, not this object's, and must not stall it.
		for _, g := range theirs {
			if s.tenant.GroupRefused(g) {
				continue // refused a moment ago; the membership reports it
			}
			err := s.tenant.AddToGroups(ctx, id, []string{g})
			if cipherscale.IsNotFound(err) && !errors.Is(err, tenant.ErrUserGone) {
				logger.Info("A membership names a group the tenant does not have", "group", g)
				continue
			}
			if err != nil {
				return applied, fmt.Errorf("adding user %s to group %s: %w", id, g, err)
			}
			added = append(added, g)
		}
		applied.AddGroups = added
		for _, g := range p.RemoveGroups {
			if err := s.tenant.RemoveFromGroup(ctx, id, g); err != nil {
				return applied, fmt.Errorf("removing user %s from group %s: %w", id, g, err)
			}
		}
		if len(added) > 0 || len(p.RemoveGroups) > 0 {
			event(iamv1alpha1.EventGroupsUpdated, "UpdateGroups", "Groups of tenant user %s: added %v, removed %v", id, added, p.RemoveGroups)
		}
	}
	if p.Deactivate {
		// Within the tenant's removal budget, after a read by id: a removal that waits is a
		// removalWaitError (Reconciling/RemovalBudgetExceeded, retried when a unit frees).
		deactivated, err := s.deactivate(ctx, obj, id)
		if err != nil {
			return applied, err
		}
		if deactivated {
			event(iamv1alpha1.EventDeactivated, "Deactivate", "Deactivated tenant user %s", id)
		}
	}
	return applied, nil
}

// splitGroups splits groups to add into those spec.groups declares and the others.
func splitGroups(spec *[]string, add []string) (own, theirs []string) {
	declared := map[string]bool{}
	if spec != nil {
		for _, g := range *spec {
			declared[plan.NormalizeID(g)] = true
		}
	}
	for _, g := range add {
		if declared[plan.NormalizeID(g)] {
			own = append(own, g)
		} else {
			theirs = append(theirs, g)
		}
	}
	return own, theirs
}

// notifyMemberships wakes the memberships that name the object when its groups changed, so that
// their status follows the pairs this reconciler wrote for them without polling.
func (s *userScope) notifyMemberships(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, p plan.UserPlan) {
	if s.MembershipEvents == nil || (len(p.AddGroups) == 0 && len(p.RemoveGroups) == 0) {
		return
	}
	naming, err := world{kube: s.Kube, tenant: s.key}.membershipsNaming(ctx, obj)
	if err != nil {
		// They see the change at their next resync.
		s.log.Error(err, "Listing the memberships that name the object to wake them")
		return
	}
	for i := range naming {
		select {
		case s.MembershipEvents <- event.GenericEvent{Object: &naming[i]}:
		default: // full: the resync catches up
		}
	}
}

// invitation resends a pending user's invitation when the annotation asks for it or
// spec.invitation says it is due. It returns how long until the next automatic resend.
func (s *userScope) invitation(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, live *cipherscale.User) (time.Duration, error) {
	now := s.Clock.Now()
	annotation := obj.Annotations[iamv1alpha1.AnnotationResendInvitation]
	d := plan.DecideInvitation(&obj.Spec, obj.Status.Invitation, live.Status, annotation, now)
	if obj.Status.Invitation == nil && live.Status.Normalized() == cipherscale.StatusPending {
		// An adopted pending user: count from now.
		t := metav1.NewTime(now)
		obj.Status.Invitation = &iamv1alpha1.InvitationStatus{LastSentTime: &t}
		if !d.Requested {
			return plan.DecideInvitation(&obj.Spec, obj.Status.Invitation, live.Status, annotation, now).Next, nil
		}
	}
	if !d.Resend {
		return d.Next, nil
	}
	st := obj.Status.Invitation
	if st == nil {
		st = &iamv1alpha1.InvitationStatus{}
		obj.Status.Invitation = st
	}
	// The cap counts the sends to the email, whichever object asked for them (invitations.go).
	inv, err := s.reserveInvitation(obj)
	switch {
	case errors.Is(err, tenant.ErrInvitationsNotRestored):
		return invitationRestoreRetry, nil
	case err != nil:
		return 0, err
	case !inv.OK:
		// Deferred, the request kept: it is answered once the oldest send leaves the window.
		s.invitationDeferredEvent(obj, live.ID, inv)
		return inv.Until.Sub(now), nil
	}
	if err := commitInvitation(ctx, s.tenant.Invitations(), obj.Spec.Email, inv.At); err != nil {
		return 0, err
	}
	s.log.Info("Resending invitation", "requested", d.Requested)
	err = s.tenant.ResendInvitation(ctx, live.ID)
	if err != nil && invitationNotSent(err) {
		s.cancelInvitation(obj, inv.At)
	}
	if cipherscale.IsConflict(err) {
		// No longer pending: the tenant layer has read the user again, and the next pass (at the
		// resync, or sooner on any change) sees the new state.
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("resending the invitation of user %s: %w", live.ID, err)
	}
	t := metav1.NewTime(now)
	st.LastSentTime = &t
	st.SentTimes = s.sentTimes(obj)
	if d.Requested {
		st.LastResendRequest = d.RequestValue
	} else {
		st.Resends++
	}
	s.event(corev1.EventTypeNormal, iamv1alpha1.EventInvitationResent, "ResendInvitation", "Resent the invitation of tenant user %s", live.ID)
	return plan.DecideInvitation(&obj.Spec, st, live.Status, annotation, now).Next, nil
}
