package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscaleusers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscaleusers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscaleusers/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// UserReconciler brings tenant users to their CipherscaleUsers. It holds what lives across
// requests; each reconcile works on a userScope.
type UserReconciler struct {
	Kube     client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// ResyncInterval is how often an object is compared with the tenant when nothing changed,
	// when its tenant sets no spec.resyncInterval.
	ResyncInterval time.Duration
	// MaxConcurrentReconciles bounds the reconciles running at once.
	MaxConcurrentReconciles int
	// MembershipEvents, when set, receives the memberships that name a user whose groups this
	// reconciler changed (the membership controller watches it).
	MembershipEvents chan<- event.GenericEvent
	// RemovalWake, when set, requeues objects whose removals waited for the removal budget when a
	// person allows more.
	RemovalWake <-chan event.GenericEvent
	// Resolver finds the tenant each object names (connect, once per reconcile).
	Resolver *TenantResolver

	// creates and wake are shared by the passes: the creates this process queued, and the
	// controller's queue their answers wake objects through.
	creates *createLog
	wake    *waker
}

// userScope is one reconcile of a CipherscaleUser: the reconciler's settings and caches, the
// object's tenant resolved once, and the object's status, written once when the pass ends.
type userScope struct {
	*UserReconciler
	tenantScope
	*statusScope
}

// Reconcile reads top to bottom: fetch, the tenant, deletion, finalizer, conflicts, observe (the
// user recorded by id, else by email), plan, act, status (written once, deferred, only when it
// changed).
func (r *UserReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	obj := &iamv1alpha1.CipherscaleUser{}
	if err := r.Kube.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			userStates.set(req.NamespacedName, "", "")
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.Status.DeepCopy()
	s := &userScope{UserReconciler: r, statusScope: newStatusScope(ctx, obj, before, &obj.Status,
		&obj.Status.Conditions, &obj.Status.ObservedGeneration, r.Recorder)}
	defer func() {
		s.observe(req.NamespacedName, obj, before)
		s.close(ctx, r.Kube, &retErr)
	}()

	// The tenant comes first: a finalizer needs it too.
	ts, err := r.Resolver.connect(ctx, obj, r.ResyncInterval)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.tenantScope = ts
	s.connected(ts)
	return s.reconcile(ctx, req, obj)
}

// reconcile is the pass, on its scope: the tenant's pass, then deletion, the guards (trust,
// finalizer, email owner, privileged roles and groups), observe, plan, act.
func (s *userScope) reconcile(ctx context.Context, req ctrl.Request, obj *iamv1alpha1.CipherscaleUser) (res ctrl.Result, retErr error) {
	// A tenant in a 429 pause gives the worker back: the object is requeued after the pause
	// (classify), so that one tenant's throttling never holds the workers other tenants need.
	ctx = cipherscale.WithoutPauseWait(ctx)
	if s.refusal != "" {
		if !obj.DeletionTimestamp.IsZero() {
			return s.deleteRefused(ctx, obj, s.refusal)
		}
		return s.stall(iamv1alpha1.ReasonInvalidTenant, s.refusal), nil
	}
	// No worker waits on a tenant: past its share of passes, or for its rate limit (turns.go).
	ctx, tenantPass, ok := enterTenant(ctx, s.tenant, obj.UID, func() { s.wake.add(req.NamespacedName) })
	if !ok {
		return ctrl.Result{RequeueAfter: passBackstop}, nil
	}
	s.turn = tenantPass
	defer tenantPass.Release()
	defer turnResult(&res, &retErr, tenantPass)

	if !obj.DeletionTimestamp.IsZero() {
		return s.reconcileDelete(ctx, obj)
	}
	gen := obj.Generation
	conds := &obj.Status.Conditions

	// Trust comes before anything is read, recorded or written: an id the object names that is
	// not the operator's own record (status.id, or a proof that verifies) is an adoption, which
	// only a namespace that may adopt makes. Elsewhere it is refused here, and status.id never
	// takes the annotation's value.
	idn := s.identityOf(obj)
	if idn.unchecked {
		return s.fail(idn.keyErr)
	}
	if idn.id != "" && !idn.own && !s.trust.MayAdopt(obj.Namespace) {
		return s.stall(iamv1alpha1.ReasonAdoptionNotAllowed, unverifiedIDMessage(s.key, obj.Namespace)), nil
	}
	if err := ensureFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer); err != nil {
		return ctrl.Result{}, err
	}

	w := world{kube: s.Kube, trust: s.trust, tenant: s.key, api: s.tenant}
	owner, err := w.emailOwnerFor(ctx, obj, idn.own)
	if err != nil {
		return ctrl.Result{}, err
	}
	if owner != nil && owner.UID != obj.UID {
		// The owner may be in a namespace the reader of this object cannot see: it is not named.
		// Checked again at each resync, and woken at once when the owner goes.
		return s.stall(iamv1alpha1.ReasonEmailConflict,
			"Another CipherscaleUser manages this email (it recorded the tenant user's id, or was created earlier); this object does nothing until that one is gone"), nil
	}

	// Privileged roles asked of a namespace that may not grant them: refused before any write,
	// the create included.
	if msg, err := s.refusedRoles(ctx, obj, nil); err != nil || msg != "" {
		if err != nil {
			return s.fail(err)
		}
		return s.stall(iamv1alpha1.ReasonNotAllowed, msg), nil
	}
	// Privileged groups likewise (the create sends spec.groups).
	if msg, err := s.refusedGroups(ctx, obj, nil); err != nil || msg != "" {
		if err != nil {
			return s.fail(err)
		}
		return s.stall(iamv1alpha1.ReasonNotAllowed, msg), nil
	}

	paused := isPaused(obj)
	if idn.own {
		// Verified: the operator's own record.
		obj.Status.ID = idn.id
	}
	seen, res, err := s.observeUser(ctx, obj, idn, paused)
	if seen.user == nil || err != nil {
		return res, err
	}
	live, readAt, isNew := seen.user, seen.readAt, seen.created
	if !live.TenantOwner() {
		// Privileged roles the user holds and spec.roles would remove.
		if msg, err := s.refusedRoles(ctx, obj, live.Roles); err != nil || msg != "" {
			if err != nil {
				return s.fail(err)
			}
			return s.stall(iamv1alpha1.ReasonNotAllowed, msg), nil
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

	add, remove, err := w.userGroupChanges(ctx, obj, live)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !live.IsOwner {
		// Privileged groups the membership rule would take the user out of.
		if msg, err := s.refusedGroups(ctx, obj, remove); err != nil || msg != "" {
			if err != nil {
				return s.fail(err)
			}
			return s.stall(iamv1alpha1.ReasonNotAllowed, msg), nil
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
	mayAdopt := s.trust.MayAdopt(obj.Namespace)
	switch {
	case gone:
		return observed{}, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant user %s this object recorded was deleted, and another user (%s) now has the email; remove the annotation %s to adopt that user",
			id, found.ID, iamv1alpha1.AnnotationUserID)), nil
	case paused && !mayAdopt && (!createPending(obj) || !s.mayManage(obj, found)):
		// Trust before pause reporting: a user the object may not manage is not shown.
		markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused, pausedUnseenMessage(s.key, obj.Namespace))
		s.settle(gen)
		return observed{}, s.resyncResult(), nil
	case paused:
		// Nothing is recorded while paused: recording is the start of managing the user.
		return observed{user: found, readAt: readAt}, ctrl.Result{}, nil
	case createPending(obj) && !s.mayManage(obj, found):
		// A mark written by hand on an object that did not create the user is an adoption.
		return observed{}, s.refuseAdoption(obj), nil
	case createPending(obj):
		// A create this object marked before sending it: the user is its own, whatever its
		// adoptionPolicy (the answer was lost to a crash, a failover or a failed write).
		if err := s.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Recorded tenant user %s, created by an earlier attempt whose answer was not recorded", found.ID)
	case !mayAdopt:
		return observed{}, s.refuseAdoption(obj), nil
	case obj.Spec.AdoptionPolicy == iamv1alpha1.AdoptionPolicyNever:
		return observed{}, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant already has a user with this email (%s) and adoptionPolicy is Never", found.ID)), nil
	default:
		if err := s.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted existing tenant user %s", found.ID)
	}
	return observed{user: found, readAt: readAt}, ctrl.Result{}, nil
}

// create marks the create as pending in the object's metadata and queues it in the tenant's
// batcher, without waiting for it (creates.go): the pass ends Reconciling (Creating), and the
// answer wakes the object. A create is never queued twice for one object.
func (s *userScope) create(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (observed, ctrl.Result, error) {
	// A create sends an invitation: it counts against the cap of the email (invitations.go),
	// and is recorded in the tenant's status before it is sent.
	inv, err := s.reserveInvitation(ctx, obj)
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
	key, uid, email := client.ObjectKeyFromObject(obj), obj.UID, obj.Spec.Email
	s.tenant.CreateAsync(cipherscale.NewUser{Email: email, Groups: groups}, func(u *cipherscale.User, err error) {
		if err != nil && invitationNotSent(err) {
			s.tenant.Invitations().Cancel(email, inv.At)
		}
		s.creates.finish(uid, u, err)
		s.wakeEmail(key, uid, email)
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
		// Trust first: the user of a namespace that may not adopt it is not described.
		if !markedBefore && !s.trust.MayAdopt(obj.Namespace) || markedBefore && !s.mayManage(obj, found) {
			return observed{}, s.refuseAdoption(obj), nil
		}
		if !markedBefore && obj.Spec.AdoptionPolicy == iamv1alpha1.AdoptionPolicyNever {
			return observed{}, s.stall(iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
				"The tenant already has a user with this email (%s) and adoptionPolicy is Never", found.ID)), nil
		}
		if err := s.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		if markedBefore {
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

// observe updates the metrics that follow an object's status.
func (s *userScope) observe(key types.NamespacedName, obj *iamv1alpha1.CipherscaleUser, before *iamv1alpha1.CipherscaleUserStatus) {
	if !obj.DeletionTimestamp.IsZero() {
		userStates.set(key, "", "")
		return
	}
	s.removalStatusStep(obj)
	userStates.set(key, s.key.String(), string(obj.Status.State))
	if isReady(obj.Status.Conditions) && before.LastSyncTime == nil {
		timeToReady.WithLabelValues("CipherscaleUser").Observe(s.Clock.Since(obj.CreationTimestamp.Time).Seconds())
	}
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
	inv, err := s.reserveInvitation(ctx, obj)
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
		case fromMark && !s.mayManage(obj, live):
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

// SetupWithManager registers the controller: it watches CipherscaleUsers (spec, annotation and
// deletion changes), the other CipherscaleUsers with the same email (one leaving hands the email
// to the next), and the memberships that name a user (they change which groups it may keep).
func (r *UserReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Kube == nil || r.Resolver == nil || r.Recorder == nil || r.Clock == nil {
		return errors.New("UserReconciler needs Kube, Resolver, Recorder and Clock")
	}
	if r.ResyncInterval <= 0 {
		return errors.New("UserReconciler needs a positive ResyncInterval")
	}
	r.creates = &createLog{}
	r.wake = &waker{}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 1
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("cipherscaleuser").
		For(&iamv1alpha1.CipherscaleUser{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, personAnnotationChanged(), deletionPredicate()))).
		Watches(&iamv1alpha1.CipherscaleUser{}, handler.EnqueueRequestsFromMapFunc(r.sameEmail),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false },
				UpdateFunc: func(e event.UpdateEvent) bool {
					return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
				},
				DeleteFunc:  func(event.DeleteEvent) bool { return true },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Watches(&iamv1alpha1.CipherscaleGroupMembership{}, handler.EnqueueRequestsFromMapFunc(r.membersOf),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: rateLimiter(r.ResyncInterval)})
	b = watchTenants(b, mgr, r.Resolver, func() client.ObjectList { return &iamv1alpha1.CipherscaleUserList{} })
	if r.RemovalWake != nil {
		b = b.WatchesRawSource(source.Channel(r.RemovalWake, &handler.EnqueueRequestForObject{}))
	}
	// The answers of queued creates wake their objects through the controller's queue.
	b = b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		r.wake.set(q)
		return nil
	}))
	return b.Complete(r)
}

// sameEmail enqueues the other CipherscaleUsers that name the same email.
func (r *UserReconciler) sameEmail(ctx context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*iamv1alpha1.CipherscaleUser)
	if !ok {
		return nil
	}
	var list iamv1alpha1.CipherscaleUserList
	if err := r.Kube.List(ctx, &list, client.MatchingFields{indexUserEmail: scoped(tenantOf(u), cipherscale.NormalizeEmail(u.Spec.Email))}); err != nil {
		// The objects waiting for the email are not woken now: their resync finds it free.
		log.FromContext(ctx).Error(err, "Listing the CipherscaleUsers of an email to wake them", "namespace", u.Namespace, "name", u.Name)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].UID != u.UID {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// membersOf enqueues the CipherscaleUsers a membership names.
func (r *UserReconciler) membersOf(ctx context.Context, o client.Object) []reconcile.Request {
	m, ok := o.(*iamv1alpha1.CipherscaleGroupMembership)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	seen := map[client.ObjectKey]bool{}
	addKey := func(k client.ObjectKey) {
		if !seen[k] {
			seen[k] = true
			reqs = append(reqs, reconcile.Request{NamespacedName: k})
		}
	}
	for _, mem := range m.Spec.Members {
		if mem.UserRef != nil {
			addKey(client.ObjectKey{Namespace: m.Namespace, Name: mem.UserRef.Name})
			continue
		}
		var list iamv1alpha1.CipherscaleUserList
		if err := r.Kube.List(ctx, &list, client.MatchingFields{indexUserEmail: scoped(tenantOf(m), cipherscale.NormalizeEmail(mem.Email))}); err != nil {
			// That member's object is not woken now: its resync sees the membership.
			log.FromContext(ctx).Error(err, "Listing the CipherscaleUsers a membership names to wake them", "namespace", m.Namespace, "name", m.Name)
			continue
		}
		for i := range list.Items {
			addKey(client.ObjectKeyFromObject(&list.Items[i]))
		}
	}
	return reqs
}

// personAnnotationChanged passes updates that change an annotation other than the identity
// annotations the reconciler itself writes (those would only wake it to redo its own pass).
func personAnnotationChanged() predicate.Predicate {
	strip := func(a map[string]string) map[string]string {
		out := make(map[string]string, len(a))
		for k, v := range a {
			if k != iamv1alpha1.AnnotationUserID && k != iamv1alpha1.AnnotationCreatePending && k != iamv1alpha1.AnnotationUserIDProof {
				out[k] = v
			}
		}
		return out
	}
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !maps.Equal(strip(e.ObjectOld.GetAnnotations()), strip(e.ObjectNew.GetAnnotations()))
		},
		CreateFunc:  func(event.CreateEvent) bool { return true },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}

// deletionPredicate passes updates that start an object's deletion.
func deletionPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
