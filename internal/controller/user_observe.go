// Observe: the tenant user a CipherscaleUser's pass compares with its spec, found by the id the
// object records, else by email (where a found user is recorded or adopted under the trust
// rules), else created (user_create.go).

package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// observed is the tenant user a pass compares with the spec.
type observed struct {
	// user is nil when the pass ends without one (created nothing, stalled, paused).
	user *cipherscale.User
	// readAt is when the compared data was read: the snapshot's read, a read by id, or the
	// create's answer.
	readAt time.Time
	// created: this pass created the user; its first writes are part of the creation.
	created bool
}

// observeUser finds the object's tenant user: by the id it names when there is one (a user
// whose email no longer matches is reported, never swapped), else by email, creating it when
// the tenant has none. idn was decided before: an id that is not the object's own reaches here
// only from a namespace that may adopt, and is recorded (with its proof) only once read. It
// returns the user and when the compared data was read; a nil user with the result and error to
// return when the pass ends here.
func (s *userScope) observeUser(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, idn identity, paused bool) (observed, ctrl.Result, error) {
	gen := obj.Generation
	gone := false
	id := idn.id
	if id != "" {
		live, readAt, err := s.tenant.Get(ctx, id, false)
		switch {
		case errors.Is(err, tenant.ErrUserGone):
			gone = true
		case err != nil:
			res, err := s.fail(err)
			return observed{}, res, err
		case cipherscale.NormalizeEmail(live.Email) != cipherscale.NormalizeEmail(obj.Spec.Email):
			return observed{}, s.stall(iamv1alpha1.ReasonEmailMismatch, fmt.Sprintf(
				"The tenant user %s recorded in the annotation %s has another email; the operator never swaps one user for another: correct the annotation, or remove it to look the user up by email",
				id, iamv1alpha1.AnnotationUserID)), nil
		case !idn.own && !paused:
			// An id written by hand, in a namespace that may adopt: an adoption by id.
			if err := s.record(ctx, obj, live.ID); err != nil {
				return observed{}, ctrl.Result{}, err
			}
			s.event(corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted existing tenant user %s, named by the annotation %s", live.ID, iamv1alpha1.AnnotationUserID)
			return observed{user: live, readAt: readAt}, ctrl.Result{}, nil
		default:
			return observed{user: live, readAt: readAt}, ctrl.Result{}, nil
		}
	}

	if pc, ok := s.creates.get(obj.UID); ok {
		switch {
		case !pc.done:
			return observed{}, s.waitForCreate(obj), nil
		case pc.tenant == s.key:
			s.creates.forget(obj.UID)
			return s.finishCreate(ctx, obj, pc)
		default:
			// Created in another tenant than the object now names: that tenant's user is left
			// alone, as after a change of tenantRef.
			s.creates.forget(obj.UID)
		}
	}
	if s.tenant.Creating(obj.Spec.Email) {
		// Another object's create of the email is queued or in flight: its answer wakes this one.
		return observed{}, s.waitForCreate(obj), nil
	}
	found, err := s.tenant.Lookup(ctx, obj.Spec.Email)
	if res, stop, err := s.lookupFailed(obj, err); stop {
		return observed{}, res, err
	}
	readAt := s.tenant.FetchedAt()
	if found == nil {
		if paused {
			markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused, "Paused: the user does not exist in the tenant and would be created")
			s.settle(gen)
			return observed{}, s.resyncResult(), nil
		}
		return s.create(ctx, obj)
	}
	if gone {
		return observed{}, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant user %s this object recorded was deleted, and another user (%s) now has the email; remove the annotation %s to adopt that user",
			id, found.ID, iamv1alpha1.AnnotationUserID)), nil
	}
	switch decide.UserFound(s.trust, obj, found, paused, createPending(obj)) {
	case decide.FoundPausedUnseen:
		// Trust before pause reporting: a user the object may not manage is not shown.
		markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused, pausedUnseenMessage(s.key, obj.Namespace))
		s.settle(gen)
		return observed{}, s.resyncResult(), nil
	case decide.FoundPaused:
		// Nothing is recorded while paused: recording is the start of managing the user.
		return observed{user: found, readAt: readAt}, ctrl.Result{}, nil
	case decide.FoundRefused:
		return observed{}, s.refuseAdoption(obj), nil
	case decide.FoundOwnCreate:
		// A create this object marked before sending it: the user is its own, whatever its
		// adoptionPolicy (the answer was lost to a crash, a failover or a failed write).
		if err := s.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Recorded tenant user %s, created by an earlier attempt whose answer was not recorded", found.ID)
	case decide.FoundNeverAdopt:
		return observed{}, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant already has a user with this email (%s) and adoptionPolicy is Never", found.ID)), nil
	case decide.FoundAdopt:
		if err := s.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted existing tenant user %s", found.ID)
	}
	return observed{user: found, readAt: readAt}, ctrl.Result{}, nil
}

// lookupFailed turns the error of a lookup by email into the pass's end: two users whose emails
// differ only in case are a person's to sort out (Stalled, both ids named).
func (s *userScope) lookupFailed(obj *iamv1alpha1.CipherscaleUser, err error) (ctrl.Result, bool, error) {
	if err == nil {
		return ctrl.Result{}, false, nil
	}
	var amb *tenant.AmbiguousEmailError
	if errors.As(err, &amb) {
		return s.stall(iamv1alpha1.ReasonAmbiguousEmail, fmt.Sprintf(
			"The tenant has %d users whose emails differ only in case from this one (ids %s); the operator never picks one: delete or rename all but one in the tenant, then set the annotation %s to the id to manage",
			len(amb.IDs), strings.Join(amb.IDs, ", "), iamv1alpha1.AnnotationUserID)), true, nil
	}
	res, err := s.fail(err)
	return res, true, err
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}
