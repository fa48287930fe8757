// Observe: the tenant user a CipherscaleUser's pass compares with its spec, found by the id the
// object records, else by email, or the create in flight for it; read, never written. What the
// pass then does with it (record, adopt, create, leave alone) is user_create.go's.

package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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

// userObservation is what observe found of the object's tenant user.
type userObservation struct {
	kind observation
	// user is the user found (by id, or by email), read at readAt.
	user   *cipherscale.User
	readAt time.Time
	// answer is the answer of the create this process queued for the object (observedAnswer).
	answer pendingCreate
	// found says what the object does with the user its email found (observedByEmail).
	found decide.Found
}

// observation is the kind of a userObservation.
type observation int

const (
	// observedByID: the user the object records, or names where its namespace may adopt, read
	// by id.
	observedByID observation = iota
	// observedByEmail: a user with the object's email that it does not record.
	observedByEmail
	// observedAbsent: no user has the email: one is to be created.
	observedAbsent
	// observedCreating: a create of the email is queued or in flight: its answer wakes the
	// object.
	observedCreating
	// observedAnswer: the answer of the create this process queued for the object.
	observedAnswer
)

// observe finds the object's tenant user, and writes nothing of the tenant or the object's
// metadata: by the id it names when there is one (a user whose email no longer matches is
// reported, never swapped), else the create this process has in flight for it or its email,
// else by email. idn was decided before: an id that is not the object's own reaches here only
// from a namespace that may adopt. stop is true when the pass ends here, with its status: a
// failed read, an email mismatch, an email several users share, a recorded user deleted while
// another has the email.
func (s *userScope) observe(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, idn identity, paused bool) (o userObservation, res ctrl.Result, stop bool, err error) {
	gone := false
	id := idn.id
	if id != "" {
		live, readAt, err := s.tenant.Get(ctx, id, false)
		switch {
		case errors.Is(err, tenant.ErrUserGone):
			gone = true
		case err != nil:
			res, err := s.fail(err)
			return o, res, true, err
		case cipherscale.NormalizeEmail(live.Email) != cipherscale.NormalizeEmail(obj.Spec.Email):
			return o, s.stall(iamv1alpha1.ReasonEmailMismatch, fmt.Sprintf(
				"The tenant user %s recorded in the annotation %s has another email; the operator never swaps one user for another: correct the annotation, or remove it to look the user up by email",
				id, iamv1alpha1.AnnotationUserID)), true, nil
		default:
			return userObservation{kind: observedByID, user: live, readAt: readAt}, ctrl.Result{}, false, nil
		}
	}

	if pc, ok := s.creates.get(obj.UID); ok {
		switch {
		case !pc.done:
			return userObservation{kind: observedCreating}, ctrl.Result{}, false, nil
		case pc.tenant == s.key:
			return userObservation{kind: observedAnswer, answer: pc}, ctrl.Result{}, false, nil
		default:
			// Created in another tenant than the object now names: that tenant's user is left
			// alone, as after a change of tenantRef.
			s.creates.forget(obj.UID)
		}
	}
	if s.tenant.Creating(obj.Spec.Email) {
		// Another object's create of the email is queued or in flight: its answer wakes this one.
		return userObservation{kind: observedCreating}, ctrl.Result{}, false, nil
	}
	found, err := s.tenant.Lookup(ctx, obj.Spec.Email)
	if res, stop, err := s.lookupFailed(obj, err); stop {
		return o, res, true, err
	}
	readAt := s.tenant.FetchedAt()
	switch {
	case found == nil:
		return userObservation{kind: observedAbsent}, ctrl.Result{}, false, nil
	case gone:
		return o, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant user %s this object recorded was deleted, and another user (%s) now has the email; remove the annotation %s to adopt that user",
			id, found.ID, iamv1alpha1.AnnotationUserID)), true, nil
	}
	return userObservation{kind: observedByEmail, user: found, readAt: readAt,
		found: decide.UserFound(s.trust, obj, found, paused, createPending(obj))}, ctrl.Result{}, false, nil
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
