// Create, or take what was found: a CipherscaleUser whose email has no tenant user queues its
// create, marked pending in its metadata first, and a later pass takes the answer (creates.go
// holds the creates in flight); a user observe found is recorded, adopted or left alone under
// the trust rules (take).

package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// create marks the create as pending in the object's metadata and queues it in the tenant's
// batcher, without waiting for it (creates.go): the pass ends Reconciling (Creating), and the
// answer wakes the object. A create is never queued twice for one object.
func (s *userScope) create(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (observed, ctrl.Result, error) {
	// A create sends an invitation: it counts against the cap of the email (invitations.go),
	// and is recorded in the tenant's status before it is sent (the batcher waits for that save,
	// not the pass: the saves of a large record are spaced, and the creates reserved meanwhile
	// share the next one).
	inv, err := s.reserveInvitation(obj)
	switch {
	case errors.Is(err, tenant.ErrInvitationsNotRestored):
		return observed{}, s.invitationsNotRestored(obj), nil
	case err != nil:
		return observed{}, ctrl.Result{}, err
	case !inv.OK:
		return observed{}, s.deferCreate(obj, inv), nil
	}
	pc := &pendingCreate{tenant: s.key, markedBefore: createPending(obj), attempt: s.Clock.Now()}
	if err := markCreatePending(ctx, s.Kube, obj, pc.attempt); err != nil {
		s.cancelInvitation(obj, inv.At)
		return observed{}, ctrl.Result{}, err
	}
	if !s.creates.start(obj.UID, pc) {
		s.cancelInvitation(obj, inv.At)
		return observed{}, s.waitForCreate(obj), nil
	}
	groups := []string{}
	if obj.Spec.Groups != nil {
		groups = plan.SortedSet(*obj.Spec.Groups)
	}
	s.log.Info("Creating tenant user", "groups", len(groups))
	// The answer's callback holds only what it needs, not the pass (its object, status copy and
	// logger): at N=10,000 thousands of creates are queued at once.
	key, uid, email, sentAt := client.ObjectKeyFromObject(obj), obj.UID, obj.Spec.Email, inv.At
	r, t, tkey := s.UserReconciler, s.tenant, s.key
	commit := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), invitationCommitTimeout)
		defer cancel()
		return commitInvitation(ctx, t.Invitations(), email, sentAt)
	}
	t.CreateAsyncAfter(cipherscale.NewUser{Email: email, Groups: groups}, commit, func(u *cipherscale.User, err error) {
		if err != nil && invitationNotSent(err) {
			t.Invitations().Cancel(email, sentAt)
		}
		r.creates.finish(uid, u, err)
		r.wakeEmail(tkey, key, uid, email)
	})
	return observed{}, s.waitForCreate(obj), nil
}

// waitForCreate ends a pass whose tenant user is being created by this process: the create's
// answer wakes the object. The resync is only a backstop.
func (s *userScope) waitForCreate(obj *iamv1alpha1.CipherscaleUser) ctrl.Result {
	markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.ReasonCreating,
		"Creating the tenant user: the create is queued or in flight")
	return s.resyncResult()
}

// finishCreate takes the answer of the object's create and records the new user's id. A 409
// (the email exists) reads the tenant again, once for all who need it, and finds the user: the
// object's own when an earlier pass had marked a create, else someone else's, for the adoption
// policy to decide.
func (s *userScope) finishCreate(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, pc pendingCreate) (observed, ctrl.Result, error) {
	s.creates.forget(obj.UID)
	ownMark(obj, pc)
	markedBefore, attempt := pc.markedBefore, pc.attempt
	created, err := pc.user, pc.err
	if cipherscale.IsConflict(err) {
		if !markedBefore {
			// This create made nobody, and no earlier one was marked: nothing is pending.
			if err := patchAnnotations(ctx, s.Kube, obj, map[string]string{iamv1alpha1.AnnotationCreatePending: ""}); err != nil {
				return observed{}, ctrl.Result{}, err
			}
		}
		if err := s.tenant.RefreshIfOlder(ctx, attempt); err != nil {
			res, err := s.fail(err)
			return observed{}, res, err
		}
		found, err := s.tenant.Lookup(ctx, obj.Spec.Email)
		if res, stop, err := s.lookupFailed(obj, err); stop {
			return observed{}, res, err
		}
		if found == nil {
			markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.ReasonCreating, "The API says the email exists, but the tenant's user list does not show it yet")
			return observed{}, ctrl.Result{}, errors.New("the create was refused because the email exists, but the list of users does not show it")
		}
		// Trust first: the user of a namespace that may not adopt it is not described. The
		// object's own mark (markedBefore) makes the user its own create's, as in take.
		decision := decide.UserFound(s.trust, obj, found, false, markedBefore)
		switch decision {
		case decide.FoundRefused:
			return observed{}, s.refuseAdoption(obj), nil
		case decide.FoundNeverAdopt:
			return observed{}, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
				"The tenant already has a user with this email (%s) and adoptionPolicy is Never", found.ID)), nil
		}
		if err := s.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		if decision == decide.FoundOwnCreate {
			s.event(corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Recorded tenant user %s, created by an earlier attempt whose answer was not recorded", found.ID)
		} else {
			s.event(corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted tenant user %s, created elsewhere a moment ago", found.ID)
		}
		return observed{user: found, readAt: s.tenant.FetchedAt()}, ctrl.Result{}, nil
	}
	if err != nil {
		if st := cipherscale.StatusOf(err); st >= 400 && st < 500 && st != 409 && st != 429 {
			// Refused: nothing was created, so nothing is pending.
			if perr := patchAnnotations(ctx, s.Kube, obj, map[string]string{iamv1alpha1.AnnotationCreatePending: ""}); perr != nil {
				return observed{}, ctrl.Result{}, errors.Join(err, perr)
			}
		}
		res, err := s.fail(err)
		return observed{}, res, err
	}
	readAt := s.Clock.Now()
	now := metav1.NewTime(readAt)
	obj.Status.Invitation = &iamv1alpha1.InvitationStatus{LastSentTime: &now, SentTimes: s.sentTimes(obj)}
	// The event is emitted now, so that a failure of the writes that follow does not lose it.
	s.event(corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Created tenant user %s and sent the invitation", created.ID)
	if err := s.record(ctx, obj, created.ID); err != nil {
		// The pending mark stays: the next pass finds the user by email and records it.
		return observed{}, ctrl.Result{}, err
	}
	return observed{user: created, readAt: readAt, created: true}, ctrl.Result{}, nil
}

// take decides, for a user observe found, what the pass compares with the spec: the user it
// records (an id the annotation names, where the namespace may adopt, is recorded with its
// proof now that it is read), or one found by email, recorded as the object's own create's or
// adopted (decide.UserFound), or left alone. A nil user ends the pass with res and err.
func (s *userScope) take(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, idn identity, o userObservation, paused bool) (observed, ctrl.Result, error) {
	seen := observed{user: o.user, readAt: o.readAt}
	if o.kind == observedByID {
		if !idn.own && !paused {
			// An id written by hand, in a namespace that may adopt: an adoption by id.
			if err := s.record(ctx, obj, o.user.ID); err != nil {
				return observed{}, ctrl.Result{}, err
			}
			s.event(corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted existing tenant user %s, named by the annotation %s", o.user.ID, iamv1alpha1.AnnotationUserID)
		}
		return seen, ctrl.Result{}, nil
	}
	gen := obj.Generation
	switch o.found {
	case decide.FoundPausedUnseen:
		// Trust before pause reporting: a user the object may not manage is not shown.
		markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused, pausedUnseenMessage(s.key, obj.Namespace))
		s.settle(gen)
		return observed{}, s.resyncResult(), nil
	case decide.FoundPaused:
		// Nothing is recorded while paused: recording is the start of managing the user.
	case decide.FoundRefused:
		return observed{}, s.refuseAdoption(obj), nil
	case decide.FoundOwnCreate:
		// A create this object marked before sending it: the user is its own, whatever its
		// adoptionPolicy (the answer was lost to a crash, a failover or a failed write).
		if err := s.record(ctx, obj, o.user.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Recorded tenant user %s, created by an earlier attempt whose answer was not recorded", o.user.ID)
	case decide.FoundNeverAdopt:
		return observed{}, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant already has a user with this email (%s) and adoptionPolicy is Never", o.user.ID)), nil
	case decide.FoundAdopt:
		if err := s.record(ctx, obj, o.user.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted existing tenant user %s", o.user.ID)
	}
	return seen, ctrl.Result{}, nil
}

// pausedAbsent ends the pass of a paused object whose email has no tenant user: nothing is
// created.
func (s *userScope) pausedAbsent(obj *iamv1alpha1.CipherscaleUser) ctrl.Result {
	gen := obj.Generation
	markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused, "Paused: the user does not exist in the tenant and would be created")
	s.settle(gen)
	return s.resyncResult()
}
