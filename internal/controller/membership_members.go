// The members of a membership's pass: observed (resolved, and the tenant users of the email
// members it writes read), added to the group, the undeclared removed (Authoritative), then
// reported in the status.

package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// memberPass is what a membership's pass knows of its members: observed (observeMembers), then
// written (addMembers, removeUndeclared), then reported (report).
type memberPass struct {
	groupID string
	members []resolvedMember
	// refused[i]: the membership may not act on members[i]; refusedManaged of them are users
	// another namespace manages, refusedUndeclared email members it may not adopt.
	refused                           []bool
	refusedManaged, refusedUndeclared int
	// live are the tenant users of the email members this membership writes, by email.
	live map[string]*cipherscale.User
	// readAt is when the oldest data the status reports was read.
	readAt time.Time
	// statuses are status.members; declared the emails of the members the group keeps.
	statuses []iamv1alpha1.MemberStatus
	declared map[string]bool
	// added, removed: the pairs this pass wrote; blocked: members whose CipherscaleUser waits
	// for a person.
	added, removed, blocked int
}

// observeMembers resolves the members and reads, for those this membership writes, their
// tenant users. It writes nothing.
func (s *membershipScope) observeMembers(ctx context.Context, obj *iamv1alpha1.CipherscaleGroupMembership, groupID string) (v memberPass, res ctrl.Result, stop bool, err error) {
	v.groupID = groupID
	w := s.world()
	passStart := s.Clock.Now()
	if v.members, err = w.resolveMembers(ctx, obj); err != nil {
		return v, ctrl.Result{}, true, err
	}
	// A member whose email has a CipherscaleUser is that user's reconciler's to write: this
	// membership only reads its state. The others (email members no CipherscaleUser manages)
	// are this membership's to write. Either only when the membership may act on that person
	// (plan.TrustPolicy.MayActOnMember): a user another namespace manages, or a person this
	// namespace may not adopt, is left alone, and nothing of them is read.
	if v.refused, v.refusedManaged, v.refusedUndeclared, err = w.refusals(ctx, obj, v.members); err != nil {
		return v, ctrl.Result{}, true, err
	}
	var emails []string
	for i, m := range v.members {
		if m.user == nil && m.email != "" && !v.refused[i] {
			emails = append(emails, m.email)
		}
	}
	if v.live, err = s.tenant.LookupMany(ctx, emails); err != nil {
		res, err := s.failLookup(err)
		return v, res, true, err
	}
	v.readAt = s.tenant.FetchedAt()
	if s.newlyMissing(obj, emails, v.live) {
		// Before calling a member missing, read the tenant again: a user added by hand a moment
		// ago is not in the snapshot. Concurrent reads are shared. Only members this membership
		// writes can force a read, and only once: the status then reports them.
		if err := s.tenant.RefreshIfOlder(ctx, passStart); err != nil {
			res, err := s.fail(err)
			return v, res, true, err
		}
		if v.live, err = s.tenant.LookupMany(ctx, emails); err != nil {
			res, err := s.failLookup(err)
			return v, res, true, err
		}
		v.readAt = s.tenant.FetchedAt()
	}
	return v, ctrl.Result{}, false, nil
}

// addMembers makes each member's status, and adds to the group the email members this
// membership writes that are not in it. The members a CipherscaleUser manages are only read:
// their reconciler writes their pairs.
func (s *membershipScope) addMembers(ctx context.Context, obj *iamv1alpha1.CipherscaleGroupMembership, v *memberPass) (res ctrl.Result, stop bool, err error) {
	groupID := v.groupID
	v.statuses = make([]iamv1alpha1.MemberStatus, 0, len(v.members))
	v.declared = map[string]bool{}
	for i, m := range v.members {
		if v.refused[i] {
			v.statuses = append(v.statuses, iamv1alpha1.MemberStatus{Email: m.email, State: iamv1alpha1.MemberStateNotAllowed})
			continue
		}
		st := iamv1alpha1.MemberStatus{Email: m.email, UserID: knownID(obj, m)}
		if m.spec.UserRef != nil {
			st.UserRef = m.spec.UserRef.Name
		}
		if m.user != nil || m.spec.UserRef != nil {
			v.declared[m.email] = m.email != ""
			state, stuck, id, at, err := s.managedMember(ctx, m.user, groupID)
			if err != nil {
				res, err := s.fail(err)
				return res, true, err
			}
			st.State = state
			if id != "" {
				st.UserID = id
			}
			if stuck {
				v.blocked++
			}
			if !at.IsZero() && at.Before(v.readAt) {
				v.readAt = at
			}
			v.statuses = append(v.statuses, st)
			continue
		}
		u := v.live[m.email]
		switch {
		case u == nil:
			st.State = iamv1alpha1.MemberStateUserNotFound
		case u.TenantOwner() && !inGroup(u, groupID):
			// The tenant owner is read-only to the operator: never added.
			v.declared[m.email] = true
			st.UserID = u.ID
			st.State = iamv1alpha1.MemberStateOwnerProtected
		default:
			v.declared[m.email] = true
			st.UserID = u.ID
			st.State = iamv1alpha1.MemberStateMember
			if !inGroup(u, groupID) {
				s.log.Info("Adding member to group")
				if err := s.tenant.AddToGroups(ctx, u.ID, []string{groupID}); err != nil {
					if errors.Is(err, tenant.ErrUserGone) {
						st.State = iamv1alpha1.MemberStateUserNotFound
						break
					}
					res, err := s.fail(fmt.Errorf("adding user %s to group %s: %w", u.ID, groupID, err))
					return res, true, err
				}
				v.added++
			}
		}
		v.statuses = append(v.statuses, st)
	}
	return ctrl.Result{}, false, nil
}

// removeUndeclared, for an Authoritative membership, removes from the group the users nothing
// declares (the membership rule, plan.DecidePair), except the tenant owner and the users a
// CipherscaleUser manages (its reconciler writes those pairs).
func (s *membershipScope) removeUndeclared(ctx context.Context, v *memberPass) (res ctrl.Result, stop bool, err error) {
	groupID := v.groupID
	w := s.world()
	present, err := s.tenant.UsersInGroup(ctx, groupID)
	if err != nil {
		res, err := s.fail(err)
		return res, true, err
	}
	for i := range present {
		u := &present[i]
		if v.declared[cipherscale.NormalizeEmail(u.Email)] || u.TenantOwner() {
			continue // the tenant owner is read-only to the operator
		}
		owner, err := w.emailOwner(ctx, u.Email)
		if err != nil {
			return ctrl.Result{}, true, err
		}
		if owner != nil && owner.DeletionTimestamp.IsZero() {
			continue // its CipherscaleUser's reconciler writes this pair
		}
		f, err := w.pairFacts(ctx, u.Email, groupID, true, "")
		if err != nil {
			return ctrl.Result{}, true, err
		}
		if plan.DecidePair(f) != plan.Remove {
			continue
		}
		s.log.Info("Removing undeclared member from group")
		if err := s.tenant.RemoveFromGroup(ctx, u.ID, groupID); err != nil && !errors.Is(err, tenant.ErrUserGone) {
			res, err := s.fail(fmt.Errorf("removing user %s from group %s: %w", u.ID, groupID, err))
			return res, true, err
		}
		v.removed++
	}
	return ctrl.Result{}, false, nil
}

// report ends a pass whose writes were made: the events of the changes, then the status says
// what the group holds now.
func (s *membershipScope) report(obj *iamv1alpha1.CipherscaleGroupMembership, before *iamv1alpha1.CipherscaleGroupMembershipStatus, v *memberPass) ctrl.Result {
	gen := obj.Generation
	groupID, added, removed := v.groupID, v.added, v.removed
	if added > 0 || removed > 0 {
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventMembersUpdated, "UpdateMembers", "Group %s: added %d members, removed %d", groupID, added, removed)
	}

	if (added > 0 || removed > 0) && obj.Status.ObservedGeneration == gen && isReady(obj.Status.Conditions) {
		driftCorrections.WithLabelValues("CipherscaleGroupMembership").Inc()
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventDriftCorrected, "Correct", "Corrected drift in group %s: added %d members, removed %d", groupID, added, removed)
	}
	statuses := v.statuses
	counts := map[iamv1alpha1.MemberState]int{}
	for _, st := range statuses {
		counts[st.State]++
	}
	if before.LastSyncTime == nil && len(statuses) == counts[iamv1alpha1.MemberStateMember] {
		timeToReady.WithLabelValues("CipherscaleGroupMembership").Observe(s.Clock.Since(obj.CreationTimestamp.Time).Seconds())
	}
	obj.Status.Members = statuses
	obj.Status.MemberCount = int32(counts[iamv1alpha1.MemberStateMember])
	obj.Status.LastSyncTime = timePtr(v.readAt)
	s.settle(gen)
	switch {
	case v.refusedManaged > 0:
		s.stall(iamv1alpha1.ReasonNotAllowed, managedMembersRefusedMessage(s.key, obj.Namespace, v.refusedManaged, v.refusedUndeclared))
	case v.refusedUndeclared > 0:
		s.stall(iamv1alpha1.ReasonAdoptionNotAllowed, emailMembersRefusedMessage(s.key, obj.Namespace, v.refusedUndeclared))
	case counts[iamv1alpha1.MemberStateUserNotFound] > 0:
		s.stall(iamv1alpha1.ReasonUserNotFound, fmt.Sprintf(
			"%d members have no user in the tenant (see status.members); the other members are in the group", counts[iamv1alpha1.MemberStateUserNotFound]))
	case counts[iamv1alpha1.MemberStateWaitingForUser] > 0 && s.tenant.GroupRefused(groupID):
		// The members' own reconcilers write their pairs; the tenant refused one as unknown.
		s.stall(iamv1alpha1.ReasonInvalidReference, "The tenant has no group with this id: adding a member to it was refused")
	case v.blocked > 0:
		s.stall(iamv1alpha1.ReasonWaitingForUser, fmt.Sprintf(
			"%d members wait for a CipherscaleUser that is stalled or paused (see status.members and those objects' conditions)", v.blocked))
	case counts[iamv1alpha1.MemberStateWaitingForUser] > 0:
		msg := fmt.Sprintf("Waiting for %d CipherscaleUsers to be created in the tenant (see status.members)", counts[iamv1alpha1.MemberStateWaitingForUser])
		markReconciling(&obj.Status.Conditions, gen, iamv1alpha1.ReasonWaitingForUser, msg)
	case counts[iamv1alpha1.MemberStateOwnerProtected] > 0:
		markReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonOwnerProtected, fmt.Sprintf(
			"%d members are in the group; the tenant owner is not: the owner is read-only to the operator, which never adds it", counts[iamv1alpha1.MemberStateMember]))
	default:
		markReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonUpToDate, fmt.Sprintf("All %d members are in the group", len(statuses)))
	}
	return s.resyncResult()
}

// managedMember reads the state of a member whose tenant user a CipherscaleUser manages (user,
// nil while a userRef names one that does not exist). It never reads the whole tenant: the user
// is found by the id its CipherscaleUser recorded. stuck is true when the CipherscaleUser will
// not write the pair until a person acts: it is stalled, or paused. at is when the user was
// read, zero when it was not.
func (s *membershipScope) managedMember(ctx context.Context, user *iamv1alpha1.CipherscaleUser, groupID string) (state iamv1alpha1.MemberState, stuck bool, id string, at time.Time, err error) {
	if user == nil || !user.DeletionTimestamp.IsZero() {
		return iamv1alpha1.MemberStateWaitingForUser, false, "", time.Time{}, nil
	}
	stuck = isPaused(user) || meta.IsStatusConditionTrue(user.Status.Conditions, iamv1alpha1.ConditionStalled)
	id = recordedID(user)
	if id == "" {
		return iamv1alpha1.MemberStateWaitingForUser, stuck, "", time.Time{}, nil
	}
	u, at, err := s.tenant.Get(ctx, id, false)
	if errors.Is(err, tenant.ErrUserGone) {
		return iamv1alpha1.MemberStateWaitingForUser, stuck, id, at, nil
	}
	if err != nil {
		return "", false, id, at, err
	}
	if inGroup(u, groupID) {
		return iamv1alpha1.MemberStateMember, false, id, at, nil
	}
	if u.TenantOwner() {
		return iamv1alpha1.MemberStateOwnerProtected, false, id, at, nil
	}
	return iamv1alpha1.MemberStateWaitingForUser, stuck, id, at, nil
}

// knownID is the id status.members recorded for a member, "" when none.
func knownID(obj *iamv1alpha1.CipherscaleGroupMembership, m resolvedMember) string {
	for _, st := range obj.Status.Members {
		if m.spec.UserRef != nil && st.UserRef == m.spec.UserRef.Name && st.UserID != "" {
			return st.UserID
		}
		if m.spec.UserRef == nil && st.UserRef == "" && st.Email == cipherscale.NormalizeEmail(m.spec.Email) && st.UserID != "" {
			return st.UserID
		}
	}
	return ""
}

// failLookup ends a pass whose lookup failed: two tenant users whose emails differ only in case
// are a person's to sort out.
func (s *membershipScope) failLookup(err error) (ctrl.Result, error) {
	var amb *tenant.AmbiguousEmailError
	if errors.As(err, &amb) {
		return s.stall(iamv1alpha1.ReasonAmbiguousEmail, fmt.Sprintf(
			"The tenant has %d users whose emails differ only in case from a member's (ids %s); the operator never picks one: delete or rename all but one in the tenant",
			len(amb.IDs), strings.Join(amb.IDs, ", "))), nil
	}
	return s.fail(err)
}

// newlyMissing reports whether an email is missing from the tenant that the status did not
// already report as UserNotFound. Members already reported missing force no read, so that a
// lasting UserNotFound costs nothing at each resync.
func (s *membershipScope) newlyMissing(obj *iamv1alpha1.CipherscaleGroupMembership, emails []string, live map[string]*cipherscale.User) bool {
	known := map[string]bool{}
	for _, st := range obj.Status.Members {
		if st.State == iamv1alpha1.MemberStateUserNotFound {
			known[st.Email] = true
		}
	}
	for _, e := range emails {
		if live[e] == nil && !known[e] {
			return true
		}
	}
	return false
}

func inGroup(u *cipherscale.User, groupID string) bool {
	for _, g := range u.Groups {
		if plan.NormalizeID(g.ID) == groupID {
			return true
		}
	}
	return false
}
