// Delete: a deleted CipherscaleUser's deletion policy carried out on its tenant user (or on
// none, when it never managed one), then its finalizer released.

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

// reconcileDelete carries out the deletion policy on the recorded tenant user, then releases the
// finalizer. Every decision rests on the API's answer by id, never on the snapshot: a user is
// gone when a read or a delete by id answers 404. An object with no recorded id and no pending
// create never created or adopted anyone and is released without a call. The tenant owner is
// never deleted or deactivated.
func (s *userScope) reconcileDelete(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, iamv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	gen := obj.Generation
	if isPaused(obj) {
		markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused,
			"Paused: deletion waits until the cipherscale.com/paused annotation is removed (or set deletionPolicy Orphan)")
		return ctrl.Result{}, nil
	}
	policy := s.deletionPolicy(ctx, obj)
	// A create this process queued for the object (a first one, or one that replaces a recorded
	// user deleted in the tenant), or for its email, is waited for: its answer says which user,
	// if any, the policy is carried out on.
	created, waiting, err := s.settleCreate(ctx, obj)
	if err != nil {
		return s.failDeleting(err)
	}
	if waiting {
		markReconciling(&obj.Status.Conditions, gen, iamv1alpha1.ReasonDeleting, "Deleting: waiting for the answer of the create in flight")
		return s.resyncResult(), nil
	}
	// Trust before any read: the id is acted on only when it is the object's own record, or the
	// namespace may adopt it.
	idn := s.identityOf(obj)
	id, own := idn.id, idn.own
	if created != "" {
		id, own = created, true
	}
	if created == "" && idn.unchecked && policy != iamv1alpha1.DeletionPolicyOrphan && !s.trust.MayAdopt(obj.Namespace) {
		// It may have managed the user: never released silently.
		return s.stallDeleting(iamv1alpha1.ReasonUnauthorized, fmt.Sprintf(
			"Deleting: deletionPolicy %s asks to remove the tenant user this object names, and the operator cannot verify the object's proof of identity because the tenant's API key cannot be read; the finalizer stays until the key is restored, the namespace may adopt users, or deletionPolicy is set to Orphan", policy)), nil
	}
	if id != "" && !own && !s.trust.MayAdopt(obj.Namespace) {
		// An id written by hand: this object never created nor adopted that user, and is
		// released at once, touching no one.
		s.event(corev1.EventTypeNormal, iamv1alpha1.ReasonAdoptionNotAllowed, "Delete",
			"Released without touching the tenant: the annotation %s is not the operator's record for this object, which never managed a tenant user", iamv1alpha1.AnnotationUserID)
		s.removalNotWanted(obj)
		return ctrl.Result{}, releaseFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer)
	}
	owner, err := world{kube: s.Kube, tenant: s.key}.emailOwnerFor(ctx, obj, own)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Only the object that owns the email, and that created or adopted a user, acts on it.
	acts := owner != nil && owner.UID == obj.UID && (id != "" || createPending(obj))
	fromMark := false
	switch {
	case !acts:
	case policy == iamv1alpha1.DeletionPolicyOrphan:
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventOrphaned, "Delete", "Left tenant user %s in the tenant (deletionPolicy Orphan)", id)
	default:
		if id == "" {
			// A create was marked but its answer never recorded: find the user by email in a
			// read of the tenant that started after the mark, then confirm it by id below.
			if id, err = s.pendingUser(ctx, obj); err != nil {
				return s.failDeleting(err)
			}
			if id == "" {
				break
			}
			fromMark = true
		}
		live, _, err := s.tenant.Get(ctx, id, true)
		switch {
		case errors.Is(err, tenant.ErrUserGone):
			s.log.V(1).Info("Tenant user already gone", "id", id)
		case err != nil:
			return s.failDeleting(err)
		case cipherscale.NormalizeEmail(live.Email) != cipherscale.NormalizeEmail(obj.Spec.Email):
			msg := fmt.Sprintf("Deleting: the tenant user %s recorded in the annotation %s has another email, so it is left alone; correct the annotation, or set deletionPolicy Orphan", id, iamv1alpha1.AnnotationUserID)
			s.warnOnChange(iamv1alpha1.ReasonEmailMismatch, msg)
			markStalled(&obj.Status.Conditions, gen, iamv1alpha1.ReasonEmailMismatch, msg)
			return s.resyncResult(), nil
		case fromMark && !decide.MayManage(s.trust, obj, live):
			// The mark was written by hand: this object never created nor adopted the user.
			s.event(corev1.EventTypeWarning, iamv1alpha1.ReasonAdoptionNotAllowed, "Delete", "Left tenant user %s alone: this object did not create it, and its namespace may not adopt users", live.ID)
		case live.TenantOwner():
			s.event(corev1.EventTypeWarning, iamv1alpha1.ReasonOwnerProtected, "Delete", "Left tenant user %s alone: the tenant owner is never deleted or deactivated", live.ID)
		case policy == iamv1alpha1.DeletionPolicyDeactivate:
			if live.Status.Normalized() != cipherscale.StatusInactive {
				// Every removal spends the tenant's budget; past it, the object waits.
				if w, err := s.reserveRemoval(ctx, obj); w != nil {
					return s.waitForRemoval(obj, w), nil
				} else if err != nil {
					return s.failDeleting(err)
				}
				s.log.Info("Deactivating tenant user on deletion")
				err := s.tenant.Deactivate(ctx, live.ID)
				s.endRemoval(obj, err)
				if err != nil && !errors.Is(err, tenant.ErrUserGone) {
					return s.failDeleting(fmt.Errorf("deactivating user %s: %w", live.ID, err))
				}
				s.event(corev1.EventTypeNormal, iamv1alpha1.EventDeactivated, "Deactivate", "Deactivated tenant user %s on deletion", live.ID)
			}
		default:
			if w, err := s.reserveRemoval(ctx, obj); w != nil {
				return s.waitForRemoval(obj, w), nil
			} else if err != nil {
				return s.failDeleting(err)
			}
			s.log.Info("Deleting tenant user")
			err := s.tenant.Delete(ctx, live.ID)
			s.endRemoval(obj, err)
			if err != nil {
				return s.failDeleting(fmt.Errorf("deleting user %s: %w", live.ID, err))
			}
			s.event(corev1.EventTypeNormal, iamv1alpha1.EventDeleted, "Delete", "Deleted tenant user %s", live.ID)
		}
	}
	// Whatever was decided, this object has no removal left to make: it stops waiting.
	s.removalNotWanted(obj)
	return ctrl.Result{}, releaseFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer)
}

// deletionPolicy is the object's deletion policy, the default when it sets none.
func (s *userScope) deletionPolicy(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) iamv1alpha1.DeletionPolicy {
	if obj.Spec.DeletionPolicy != "" {
		return obj.Spec.DeletionPolicy
	}
	return s.defaultDeletionPolicy // the tenant's spec.defaultDeletionPolicy
}

// deleteRefused handles the deletion of an object that may not use its tenant (refusal says
// why): the tenant cannot be reached. An object that never managed a user (no id of its own, no
// pending create) or whose policy asks for no removal (Orphan) is released at once, touching no
// one. One that did manage a user and asks for its removal is never released silently: it stays
// Stalled, saying what would release it.
func (s *userScope) deleteRefused(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, refusal string) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, iamv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	policy := s.deletionPolicy(ctx, obj)
	ann := obj.Annotations[iamv1alpha1.AnnotationUserID]
	st := obj.Status.ID
	// Without the tenant no proof can be checked: a proof that is there may be the object's own.
	managed := st != "" && (ann == "" || plan.NormalizeID(st) == plan.NormalizeID(ann)) ||
		ann != "" && obj.Annotations[iamv1alpha1.AnnotationUserIDProof] != "" ||
		createPending(obj)
	if managed && policy != iamv1alpha1.DeletionPolicyOrphan {
		return s.stallDeleting(iamv1alpha1.ReasonInvalidTenant, fmt.Sprintf(
			"Deleting: deletionPolicy %s asks to remove the tenant user this object manages, and the operator cannot use its tenant (%s); the finalizer stays until the tenant can be used again (restore its key, or the namespace's access to it), or deletionPolicy is set to Orphan",
			policy, refusal)), nil
	}
	if managed {
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventOrphaned, "Delete", "Left the tenant user in the tenant (deletionPolicy Orphan)")
	}
	if s.tenant != nil { // no tenant, no removal waiting in its budget
		s.removalNotWanted(obj)
	}
	return ctrl.Result{}, releaseFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer)
}

// settleCreate takes, for a deletion, the answer of a create this process queued for the object:
// the id of the user it created (recorded), or, when it was refused, the pending mark cleared as
// the create pass would have. waiting: a create of the email is still queued or in flight.
func (s *userScope) settleCreate(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (id string, waiting bool, err error) {
	pc, ok := s.creates.get(obj.UID)
	switch {
	case ok && !pc.done:
		return "", true, nil
	case !ok:
		return "", s.tenant.Creating(obj.Spec.Email), nil
	}
	s.creates.forget(obj.UID)
	if pc.tenant != s.key {
		return "", false, nil
	}
	ownMark(obj, pc)
	if pc.err == nil && pc.user != nil {
		if err := s.record(ctx, obj, pc.user.ID); err != nil {
			return "", false, err
		}
		return pc.user.ID, false, nil
	}
	st := cipherscale.StatusOf(pc.err)
	if st == 409 && !pc.markedBefore || st >= 400 && st < 500 && st != 409 && st != 429 {
		// Refused: this create made nobody, and no earlier one was marked.
		if err := patchAnnotations(ctx, s.Kube, obj, map[string]string{iamv1alpha1.AnnotationCreatePending: ""}); err != nil {
			return "", false, err
		}
	}
	return "", false, nil
}

// pendingUser returns the id of the user with the object's email in a read of the tenant that
// started after this pass began, "" when that read has none. A create this process queued for
// the email has completed by then (settleCreate waits for it), and one sent by a process that is
// gone was applied long before.
func (s *userScope) pendingUser(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (string, error) {
	if err := s.tenant.RefreshIfOlder(ctx, s.Clock.Now()); err != nil {
		return "", err
	}
	u, err := s.tenant.Lookup(ctx, obj.Spec.Email)
	if err != nil || u == nil {
		return "", err
	}
	return u.ID, nil
}
