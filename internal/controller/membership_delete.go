// Delete: a deleted membership's deletion policy carried out on the pairs it declared, then its
// finalizer released.

package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// reconcileDelete removes, under deletionPolicy Delete, the pairs this membership declared that
// nothing else declares, then releases the finalizer. Each member's user is found by id (from
// its CipherscaleUser, or from status.members when that object is already gone) and read fresh:
// the release is the membership's last write, and it rests on the API's answer.
func (s *membershipScope) reconcileDelete(ctx context.Context, obj *iamv1alpha1.CipherscaleGroupMembership) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, iamv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	winner, err := s.conflictWinner(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	// An Authoritative membership its namespace may not have, or one of a privileged group its
	// namespace may not manage, declared nothing: it releases nothing.
	w := s.world()
	refused := obj.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && !s.trust.MayBeAuthoritative(obj.Namespace)
	if !refused && obj.Spec.DeletionPolicy != iamv1alpha1.MembershipDeletionPolicyOrphan && winner == nil && !s.trust.Privileged.Allows(obj.Namespace) {
		privileged, err := w.privilegedGroup(ctx, obj.Spec.GroupID)
		if err != nil {
			return s.failDeleting(err)
		}
		refused = privileged
	}
	if obj.Spec.DeletionPolicy != iamv1alpha1.MembershipDeletionPolicyOrphan && winner == nil && !refused {
		groupID := plan.NormalizeID(obj.Spec.GroupID)
		members, err := w.resolveMembers(ctx, obj)
		if err != nil {
			return ctrl.Result{}, err
		}
		removed := 0
		for _, m := range members {
			// Only the members it may act on: never a user another namespace manages, nor a
			// person its namespace may not adopt.
			var owner *iamv1alpha1.CipherscaleUser
			if m.spec.UserRef == nil && m.email != "" {
				var err error
				if owner, err = w.emailOwner(ctx, m.email); err != nil {
					return ctrl.Result{}, err
				}
			}
			if !decide.MayActOnMember(s.trust, obj, decide.ManagedIn(obj, m.spec, owner)) {
				continue
			}
			// The member's user by id: its CipherscaleUser's record, else the id this
			// membership recorded in status.members (the CipherscaleUser may be gone), else the
			// email in the snapshot.
			id := knownID(obj, m)
			if m.user != nil && recordedID(m.user) != "" {
				id = recordedID(m.user)
			}
			if id == "" && m.email != "" {
				u, err := s.tenant.Lookup(ctx, m.email)
				if err != nil {
					return s.failDeleting(err)
				}
				if u != nil {
					id = u.ID
				}
			}
			if id == "" {
				continue
			}
			u, _, err := s.tenant.Get(ctx, id, true)
			if errors.Is(err, tenant.ErrUserGone) {
				continue
			}
			if err != nil {
				return s.failDeleting(err)
			}
			if !inGroup(u, groupID) || u.TenantOwner() {
				continue // the tenant owner is read-only to the operator
			}
			f, err := w.pairFacts(ctx, u.Email, groupID, true, membershipSource(obj))
			if err != nil {
				return ctrl.Result{}, err
			}
			if plan.DecideRelease(f, true) != plan.Remove {
				continue
			}
			if err := s.tenant.RemoveFromGroup(ctx, u.ID, groupID); err != nil && !errors.Is(err, tenant.ErrUserGone) && !cipherscale.IsNotFound(err) {
				return s.failDeleting(fmt.Errorf("removing user %s from group %s: %w", u.ID, groupID, err))
			}
			removed++
		}
		if removed > 0 {
			s.event(corev1.EventTypeNormal, iamv1alpha1.EventMembersUpdated, "Delete", "Group %s: removed %d members this object declared", groupID, removed)
		}
	}
	return ctrl.Result{}, releaseFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer)
}
