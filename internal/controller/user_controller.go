package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
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

// UserReconciler brings tenant users to their CipherscaleUsers.
type UserReconciler struct {
	Kube     client.Client
	Tenant   *tenant.Tenant
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// ResyncInterval is how often an object is compared with the tenant when nothing changed.
	ResyncInterval time.Duration
	// MaxConcurrentReconciles bounds the reconciles running at once.
	MaxConcurrentReconciles int
	// MembershipEvents, when set, receives the memberships that name a user whose groups this
	// reconciler changed (the membership controller watches it).
	MembershipEvents chan<- event.GenericEvent
	// RemovalWake, when set, requeues objects whose removals waited for the removal budget when a
	// person allows more.
	RemovalWake <-chan event.GenericEvent
	// Trust is what the object's tenant allows its namespace beyond managing the users the
	// operator creates for it: adoption, privileged roles. Reconcile sets it, on the copy made
	// for the pass, from the tenant's spec (TenantResolver.Trust).
	Trust plan.TrustPolicy

	// sent, creates and wake are shared by the copies of the reconciler made for each pass.
	creates *createLog
	wake    *waker
	// Resolver finds the tenant each object names. Tenant is the tenant of one pass:
	// Reconcile sets it, with tenantKey, on a copy of the reconciler made for the pass.
	Resolver  *TenantResolver
	tenantKey tenant.Key
	// pass is the pass of the tenant this reconcile holds (turns.go).
	pass *tenant.Pass
}

// Reconcile reads top to bottom: fetch, the tenant, deletion, finalizer, conflicts, observe (the
// user recorded by id, else by email), plan, act, status (written once, deferred, only when it
// changed).
func (r *UserReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	logger := log.FromContext(ctx)
	obj := &iamv1alpha1.CipherscaleUser{}
	if err := r.Kube.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			userStates.set(req.NamespacedName, "", "")
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.Status.DeepCopy()
	defer func() {
		r.observe(req.NamespacedName, obj, before)
		if err := patchStatus(ctx, r.Kube, obj, before, &obj.Status); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()

	// The tenant comes first: a finalizer needs it too.
	t, key, refusal, err := r.Resolver.Resolve(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	pass := *r
	pass.Tenant, pass.tenantKey = t, key
	pass.Trust = r.Resolver.Trust(ctx, key)
	if t != nil {
		pass.ResyncInterval = t.ResyncInterval() // the tenant's spec.resyncInterval
	}
	r = &pass
	// A tenant in a 429 pause gives the worker back: the object is requeued after the pause
	// (classify), so that one tenant's throttling never holds the workers other tenants need.
	ctx = cipherscale.WithoutPauseWait(ctx)
	if refusal != "" {
		if !obj.DeletionTimestamp.IsZero() {
			return r.deleteRefused(ctx, obj, refusal)
		}
		return r.stall(obj, iamv1alpha1.ReasonInvalidTenant, refusal, jitter(r.ResyncInterval)), nil
	}
	// No worker waits on a tenant: past its share of passes, or for its rate limit (turns.go).
	ctx, tenantPass, ok := enterTenant(ctx, t, obj.UID, func() { r.wake.add(req.NamespacedName) })
	if !ok {
		return ctrl.Result{RequeueAfter: passBackstop}, nil
	}
	r.pass = tenantPass
	defer tenantPass.Release()
	defer turnResult(&res, &retErr, tenantPass)

	if !obj.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, obj)
	}
	gen := obj.Generation
	conds := &obj.Status.Conditions

	// Trust comes before anything is read, recorded or written: an id the object names that is
	// not the operator's own record (status.id, or a proof that verifies) is an adoption, which
	// only a namespace that may adopt makes. Elsewhere it is refused here, and status.id never
	// takes the annotation's value.
	idn := r.identityOf(obj)
	if idn.unchecked {
		return r.fail(obj, idn.keyErr)
	}
	if idn.id != "" && !idn.own && !r.Trust.MayAdopt(obj.Namespace) {
		return r.stall(obj, iamv1alpha1.ReasonAdoptionNotAllowed, unverifiedIDMessage(r.tenantKey, obj.Namespace), jitter(r.ResyncInterval)), nil
	}
	if err := ensureFinalizer(ctx, r.Kube, obj, iamv1alpha1.Finalizer); err != nil {
		return ctrl.Result{}, err
	}

	w := world{kube: r.Kube, trust: r.Trust, tenant: r.tenantKey, api: r.Tenant}
	owner, err := w.emailOwnerFor(ctx, obj, idn.own)
	if err != nil {
		return ctrl.Result{}, err
	}
	if owner != nil && owner.UID != obj.UID {
		// The owner may be in a namespace the reader of this object cannot see: it is not named.
		// Checked again at each resync, and woken at once when the owner goes.
		return r.stall(obj, iamv1alpha1.ReasonEmailConflict,
			"Another CipherscaleUser manages this email (it recorded the tenant user's id, or was created earlier); this object does nothing until that one is gone", jitter(r.ResyncInterval)), nil
	}

	// Privileged roles asked of a namespace that may not grant them: refused before any write,
	// the create included.
	if msg, err := r.refusedRoles(ctx, obj, nil); err != nil || msg != "" {
		if err != nil {
			return r.fail(obj, err)
		}
		return r.stall(obj, iamv1alpha1.ReasonNotAllowed, msg, jitter(r.ResyncInterval)), nil
	}
	// Privileged groups likewise (the create sends spec.groups).
	if msg, err := r.refusedGroups(ctx, obj, nil); err != nil || msg != "" {
		if err != nil {
			return r.fail(obj, err)
		}
		return r.stall(obj, iamv1alpha1.ReasonNotAllowed, msg, jitter(r.ResyncInterval)), nil
	}

	paused := isPaused(obj)
	if idn.own {
		// Verified: the operator's own record.
		obj.Status.ID = idn.id
	}
	seen, res, err := r.observeUser(ctx, obj, idn, paused)
	if seen.user == nil || err != nil {
		return res, err
	}
	live, readAt, isNew := seen.user, seen.readAt, seen.created
	if !live.TenantOwner() {
		// Privileged roles the user holds and spec.roles would remove.
		if msg, err := r.refusedRoles(ctx, obj, live.Roles); err != nil || msg != "" {
			if err != nil {
				return r.fail(obj, err)
			}
			return r.stall(obj, iamv1alpha1.ReasonNotAllowed, msg, jitter(r.ResyncInterval)), nil
		}
	}
	if !paused && (obj.Annotations[iamv1alpha1.AnnotationUserID] == "" || idn.resign && plan.NormalizeID(idn.id) == plan.NormalizeID(live.ID)) {
		// An object an earlier version reconciled has its id in status only, or no proof, or a
		// proof made with a key since rotated: record it, with a proof, where it survives a
		// restore.
		if err := r.record(ctx, obj, live.ID); err != nil {
			return ctrl.Result{}, err
		}
	}

	add, remove, err := w.userGroupChanges(ctx, obj, live)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !live.IsOwner {
		// Privileged groups the membership rule would take the user out of.
		if msg, err := r.refusedGroups(ctx, obj, remove); err != nil || msg != "" {
			if err != nil {
				return r.fail(obj, err)
			}
			return r.stall(obj, iamv1alpha1.ReasonNotAllowed, msg, jitter(r.ResyncInterval)), nil
		}
	}
	p := plan.PlanUser(&obj.Spec, live, add, remove)
	logger.V(1).Info("Planned", "plan", p.String())

	if paused {
		obj.Status.State = plan.StateOf(live.Status)
		setTenantRefs(&obj.Status, live)
		if p.Empty() {
			markReady(conds, gen, iamv1alpha1.ReasonPaused, "Paused: the tenant matches the spec; no writes are made")
		} else {
			markNotReady(conds, gen, iamv1alpha1.ReasonPaused, "Paused: the tenant differs from the spec: "+p.String())
		}
		obj.Status.LastSyncTime = timePtr(readAt)
		obj.Status.ObservedGeneration = gen
		return r.resync(), nil
	}

	drift := !p.Empty() && !isNew && obj.Status.ObservedGeneration == gen && isReady(obj.Status.Conditions)
	applied, err := r.apply(ctx, obj, live.ID, p, !isNew)
	if err != nil {
		if errors.Is(err, tenant.ErrUserGone) {
			// Deleted in the tenant during this pass: the next pass reads it by id and creates
			// it again. The workqueue's backoff spaces the passes.
			markReconciling(conds, gen, iamv1alpha1.ReasonUpdating, "The tenant user was deleted while it was being updated")
			return ctrl.Result{}, err
		}
		return r.fail(obj, err)
	}
	r.notifyMemberships(ctx, obj, p)
	if drift && !applied.Empty() {
		driftCorrections.WithLabelValues("CipherscaleUser").Inc()
		r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventDriftCorrected, "Correct", "Corrected drift in the tenant: %s", applied.String())
	}

	// The snapshot now holds the result of the writes.
	cur, _, err := r.Tenant.Get(ctx, live.ID, false)
	if err == nil {
		live = cur
		var next time.Duration
		if next, err = r.invitation(ctx, obj, live); err == nil {
			return r.finish(obj, p, live, readAt, next), nil
		}
	}
	if errors.Is(err, tenant.ErrUserGone) {
		// Deleted in the tenant during this pass: the next pass reads it by id and creates it
		// again. The workqueue's backoff spaces the passes.
		markReconciling(conds, gen, iamv1alpha1.ReasonUpdating, "The tenant user was deleted while it was being updated")
		return ctrl.Result{}, err
	}
	return r.fail(obj, err)
}

// finish ends a pass whose writes were made: the status says what the tenant holds now.
func (r *UserReconciler) finish(obj *iamv1alpha1.CipherscaleUser, p plan.UserPlan, live *cipherscale.User, readAt time.Time, next time.Duration) ctrl.Result {
	gen := obj.Generation
	conds := &obj.Status.Conditions

	obj.Status.State = plan.StateOf(live.Status)
	setTenantRefs(&obj.Status, live)
	obj.Status.LastSyncTime = timePtr(readAt)
	obj.Status.ObservedGeneration = gen
	switch {
	case p.OwnerProtected && p.Withheld != "":
		return r.stall(obj, iamv1alpha1.ReasonOwnerProtected, "The tenant owner is read-only to the operator, and the spec differs from the owner's state ("+p.Withheld+"): no change is made; match the spec to the owner, or remove it", jitter(r.ResyncInterval))
	case p.OwnerProtected:
		markReady(conds, gen, iamv1alpha1.ReasonOwnerProtected, "The tenant owner matches the spec; the owner is read-only to the operator, which makes no change to it")
	case p.UnknownStatus != "":
		markReady(conds, gen, iamv1alpha1.ReasonUpToDate, fmt.Sprintf("In sync, except the active state: the API reports the unknown status %q", p.UnknownStatus))
	default:
		markReady(conds, gen, iamv1alpha1.ReasonUpToDate, "The tenant user matches the spec")
	}
	res := r.resync()
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
func (r *UserReconciler) observeUser(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, idn identity, paused bool) (observed, ctrl.Result, error) {
	gen := obj.Generation
	gone := false
	id := idn.id
	if id != "" {
		live, readAt, err := r.Tenant.Get(ctx, id, false)
		switch {
		case errors.Is(err, tenant.ErrUserGone):
			gone = true
		case err != nil:
			res, err := r.fail(obj, err)
			return observed{}, res, err
		case cipherscale.NormalizeEmail(live.Email) != cipherscale.NormalizeEmail(obj.Spec.Email):
			return observed{}, r.stall(obj, iamv1alpha1.ReasonEmailMismatch, fmt.Sprintf(
				"The tenant user %s recorded in the annotation %s has another email; the operator never swaps one user for another: correct the annotation, or remove it to look the user up by email",
				id, iamv1alpha1.AnnotationUserID), jitter(r.ResyncInterval)), nil
		case !idn.own && !paused:
			// An id written by hand, in a namespace that may adopt: an adoption by id.
			if err := r.record(ctx, obj, live.ID); err != nil {
				return observed{}, ctrl.Result{}, err
			}
			r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted existing tenant user %s, named by the annotation %s", live.ID, iamv1alpha1.AnnotationUserID)
			return observed{user: live, readAt: readAt}, ctrl.Result{}, nil
		default:
			return observed{user: live, readAt: readAt}, ctrl.Result{}, nil
		}
	}

	if pc, ok := r.creates.get(obj.UID); ok {
		switch {
		case !pc.done:
			return observed{}, r.waitForCreate(obj), nil
		case pc.tenant == r.tenantKey:
			r.creates.forget(obj.UID)
			return r.finishCreate(ctx, obj, pc)
		default:
			// Created in another tenant than the object now names: that tenant's user is left
			// alone, as after a change of tenantRef.
			r.creates.forget(obj.UID)
		}
	}
	if r.Tenant.Creating(obj.Spec.Email) {
		// Another object's create of the email is queued or in flight: its answer wakes this one.
		return observed{}, r.waitForCreate(obj), nil
	}
	found, err := r.Tenant.Lookup(ctx, obj.Spec.Email)
	if res, stop, err := r.lookupFailed(obj, err); stop {
		return observed{}, res, err
	}
	readAt := r.Tenant.FetchedAt()
	if found == nil {
		if paused {
			markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused, "Paused: the user does not exist in the tenant and would be created")
			obj.Status.ObservedGeneration = gen
			return observed{}, r.resync(), nil
		}
		return r.create(ctx, obj)
	}
	mayAdopt := r.Trust.MayAdopt(obj.Namespace)
	switch {
	case gone:
		return observed{}, r.stall(obj, iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant user %s this object recorded was deleted, and another user (%s) now has the email; remove the annotation %s to adopt that user",
			id, found.ID, iamv1alpha1.AnnotationUserID), jitter(r.ResyncInterval)), nil
	case paused && !mayAdopt && (!createPending(obj) || !r.mayManage(obj, found)):
		// Trust before pause reporting: a user the object may not manage is not shown.
		markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused, pausedUnseenMessage(r.tenantKey, obj.Namespace))
		obj.Status.ObservedGeneration = gen
		return observed{}, r.resync(), nil
	case paused:
		// Nothing is recorded while paused: recording is the start of managing the user.
		return observed{user: found, readAt: readAt}, ctrl.Result{}, nil
	case createPending(obj) && !r.mayManage(obj, found):
		// A mark written by hand on an object that did not create the user is an adoption.
		return observed{}, r.refuseAdoption(obj), nil
	case createPending(obj):
		// A create this object marked before sending it: the user is its own, whatever its
		// adoptionPolicy (the answer was lost to a crash, a failover or a failed write).
		if err := r.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Recorded tenant user %s, created by an earlier attempt whose answer was not recorded", found.ID)
	case !mayAdopt:
		return observed{}, r.refuseAdoption(obj), nil
	case obj.Spec.AdoptionPolicy == iamv1alpha1.AdoptionPolicyNever:
		return observed{}, r.stall(obj, iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
			"The tenant already has a user with this email (%s) and adoptionPolicy is Never", found.ID), jitter(r.ResyncInterval)), nil
	default:
		if err := r.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted existing tenant user %s", found.ID)
	}
	return observed{user: found, readAt: readAt}, ctrl.Result{}, nil
}

// create marks the create as pending in the object's metadata and queues it in the tenant's
// batcher, without waiting for it (creates.go): the pass ends Reconciling (Creating), and the
// answer wakes the object. A create is never queued twice for one object.
func (r *UserReconciler) create(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (observed, ctrl.Result, error) {
	// A create sends an invitation: it counts against the cap of the email (invitations.go),
	// and is recorded in the tenant's status before it is sent.
	inv, err := r.reserveInvitation(ctx, obj)
	switch {
	case errors.Is(err, tenant.ErrInvitationsNotRestored):
		return observed{}, r.invitationsNotRestored(obj), nil
	case err != nil:
		return observed{}, ctrl.Result{}, err
	case !inv.OK:
		return observed{}, r.deferCreate(obj, inv), nil
	}
	pc := &pendingCreate{tenant: r.tenantKey, markedBefore: createPending(obj), attempt: r.Clock.Now()}
	if err := markCreatePending(ctx, r.Kube, obj, pc.attempt); err != nil {
		r.cancelInvitation(obj, inv.At)
		return observed{}, ctrl.Result{}, err
	}
	if !r.creates.start(obj.UID, pc) {
		r.cancelInvitation(obj, inv.At)
		return observed{}, r.waitForCreate(obj), nil
	}
	groups := []string{}
	if obj.Spec.Groups != nil {
		groups = plan.SortedSet(*obj.Spec.Groups)
	}
	log.FromContext(ctx).Info("Creating tenant user", "groups", len(groups))
	key, uid, email := client.ObjectKeyFromObject(obj), obj.UID, obj.Spec.Email
	r.Tenant.CreateAsync(cipherscale.NewUser{Email: email, Groups: groups}, func(u *cipherscale.User, err error) {
		if err != nil && invitationNotSent(err) {
			r.Tenant.Invitations().Cancel(email, inv.At)
		}
		r.creates.finish(uid, u, err)
		r.wakeEmail(key, uid, email)
	})
	return observed{}, r.waitForCreate(obj), nil
}

// waitForCreate ends a pass whose tenant user is being created by this process: the create's
// answer wakes the object. The resync is only a backstop.
func (r *UserReconciler) waitForCreate(obj *iamv1alpha1.CipherscaleUser) ctrl.Result {
	markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.ReasonCreating,
		"Creating the tenant user: the create is queued or in flight")
	return r.resync()
}

// finishCreate takes the answer of the object's create and records the new user's id. A 409
// (the email exists) reads the tenant again, once for all who need it, and finds the user: the
// object's own when an earlier pass had marked a create, else someone else's, for the adoption
// policy to decide.
func (r *UserReconciler) finishCreate(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, pc pendingCreate) (observed, ctrl.Result, error) {
	ownMark(obj, pc)
	markedBefore, attempt := pc.markedBefore, pc.attempt
	created, err := pc.user, pc.err
	if cipherscale.IsConflict(err) {
		if !markedBefore {
			// This create made nobody, and no earlier one was marked: nothing is pending.
			if err := patchAnnotations(ctx, r.Kube, obj, map[string]string{iamv1alpha1.AnnotationCreatePending: ""}); err != nil {
				return observed{}, ctrl.Result{}, err
			}
		}
		if err := r.Tenant.RefreshIfOlder(ctx, attempt); err != nil {
			res, err := r.fail(obj, err)
			return observed{}, res, err
		}
		found, err := r.Tenant.Lookup(ctx, obj.Spec.Email)
		if res, stop, err := r.lookupFailed(obj, err); stop {
			return observed{}, res, err
		}
		if found == nil {
			markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.ReasonCreating, "The API says the email exists, but the tenant's user list does not show it yet")
			return observed{}, ctrl.Result{}, errors.New("the create was refused because the email exists, but the list of users does not show it")
		}
		// Trust first: the user of a namespace that may not adopt it is not described.
		if !markedBefore && !r.Trust.MayAdopt(obj.Namespace) || markedBefore && !r.mayManage(obj, found) {
			return observed{}, r.refuseAdoption(obj), nil
		}
		if !markedBefore && obj.Spec.AdoptionPolicy == iamv1alpha1.AdoptionPolicyNever {
			return observed{}, r.stall(obj, iamv1alpha1.ReasonAlreadyExists, fmt.Sprintf(
				"The tenant already has a user with this email (%s) and adoptionPolicy is Never", found.ID), jitter(r.ResyncInterval)), nil
		}
		if err := r.record(ctx, obj, found.ID); err != nil {
			return observed{}, ctrl.Result{}, err
		}
		if markedBefore {
			r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Recorded tenant user %s, created by an earlier attempt whose answer was not recorded", found.ID)
		} else {
			r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventAdopted, "Adopt", "Adopted tenant user %s, created elsewhere a moment ago", found.ID)
		}
		return observed{user: found, readAt: r.Tenant.FetchedAt()}, ctrl.Result{}, nil
	}
	if err != nil {
		if st := cipherscale.StatusOf(err); st >= 400 && st < 500 && st != 409 && st != 429 {
			// Refused: nothing was created, so nothing is pending.
			if perr := patchAnnotations(ctx, r.Kube, obj, map[string]string{iamv1alpha1.AnnotationCreatePending: ""}); perr != nil {
				return observed{}, ctrl.Result{}, errors.Join(err, perr)
			}
		}
		res, err := r.fail(obj, err)
		return observed{}, res, err
	}
	readAt := r.Clock.Now()
	now := metav1.NewTime(readAt)
	obj.Status.Invitation = &iamv1alpha1.InvitationStatus{LastSentTime: &now, SentTimes: r.sentTimes(obj)}
	// The event is emitted now, so that a failure of the writes that follow does not lose it.
	r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventCreated, "Create", "Created tenant user %s and sent the invitation", created.ID)
	if err := r.record(ctx, obj, created.ID); err != nil {
		// The pending mark stays: the next pass finds the user by email and records it.
		return observed{}, ctrl.Result{}, err
	}
	return observed{user: created, readAt: readAt, created: true}, ctrl.Result{}, nil
}

// lookupFailed turns the error of a lookup by email into the pass's end: two users whose emails
// differ only in case are a person's to sort out (Stalled, both ids named).
func (r *UserReconciler) lookupFailed(obj *iamv1alpha1.CipherscaleUser, err error) (ctrl.Result, bool, error) {
	if err == nil {
		return ctrl.Result{}, false, nil
	}
	var amb *tenant.AmbiguousEmailError
	if errors.As(err, &amb) {
		return r.stall(obj, iamv1alpha1.ReasonAmbiguousEmail, fmt.Sprintf(
			"The tenant has %d users whose emails differ only in case from this one (ids %s); the operator never picks one: delete or rename all but one in the tenant, then set the annotation %s to the id to manage",
			len(amb.IDs), strings.Join(amb.IDs, ", "), iamv1alpha1.AnnotationUserID), jitter(r.ResyncInterval)), true, nil
	}
	res, err := r.fail(obj, err)
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
func (r *UserReconciler) observe(key types.NamespacedName, obj *iamv1alpha1.CipherscaleUser, before *iamv1alpha1.CipherscaleUserStatus) {
	if !obj.DeletionTimestamp.IsZero() {
		userStates.set(key, "", "")
		return
	}
	r.removalStatusStep(obj)
	userStates.set(key, r.tenantKey.String(), string(obj.Status.State))
	if isReady(obj.Status.Conditions) && before.LastSyncTime == nil {
		timeToReady.WithLabelValues("CipherscaleUser").Observe(r.Clock.Since(obj.CreationTimestamp.Time).Seconds())
	}
}

// apply makes the plan's calls in order, with an event for each when events is true. It returns
// the plan as applied: without the groups only memberships declare that the tenant refused as
// unknown (their memberships report them).
func (r *UserReconciler) apply(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, id string, p plan.UserPlan, events bool) (applied plan.UserPlan, err error) {
	applied = p
	if p.Empty() {
		return applied, nil
	}
	event := func(reason, action, note string, args ...any) {
		if events {
			r.event(obj, corev1.EventTypeNormal, reason, action, note, args...)
		}
	}
	logger := log.FromContext(ctx)
	if p.Reactivate {
		logger.Info("Reactivating tenant user")
		if err := r.Tenant.Reactivate(ctx, id); err != nil {
			return applied, fmt.Errorf("reactivating user %s: %w", id, err)
		}
		event(iamv1alpha1.EventReactivated, "Reactivate", "Reactivated tenant user %s", id)
	}
	if p.Profile != nil {
		logger.Info("Updating profile")
		if err := r.Tenant.UpdateProfile(ctx, id, *p.Profile); err != nil {
			return applied, fmt.Errorf("updating profile of user %s: %w", id, err)
		}
		event(iamv1alpha1.EventProfileUpdated, "UpdateProfile", "Updated the profile of tenant user %s", id)
	}
	if p.Roles != nil {
		logger.Info("Patching roles", "added", len(p.Roles.AddedRoles), "removed", len(p.Roles.RemovedRoles))
		if err := r.Tenant.PatchRoles(ctx, id, *p.Roles); err != nil {
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
				if r.Tenant.GroupSeen(g) {
					seen = append(seen, g)
					return true
				}
				return false
			})
		}
		added := append(slices.Clip(own), seen...)
		err := r.Tenant.AddToGroups(ctx, id, added)
		if len(seen) > 0 && cipherscale.IsNotFound(err) && !errors.Is(err, tenant.ErrUserGone) {
			added, theirs = own, append(theirs, seen...)
			err = r.Tenant.AddToGroups(ctx, id, own)
		}
		if err != nil {
			return applied, fmt.Errorf("adding user %s to groups: %w", id, err)
		}
		// The other groups only memberships declare are added one by one: an unknown one is the
		// membership's mistake, not this object's, and must not stall it.
		for _, g := range theirs {
			if r.Tenant.GroupRefused(g) {
				continue // refused a moment ago; the membership reports it
			}
			err := r.Tenant.AddToGroups(ctx, id, []string{g})
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
			if err := r.Tenant.RemoveFromGroup(ctx, id, g); err != nil {
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
		deactivated, err := r.deactivate(ctx, obj, id)
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
func (r *UserReconciler) notifyMemberships(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, p plan.UserPlan) {
	if r.MembershipEvents == nil || (len(p.AddGroups) == 0 && len(p.RemoveGroups) == 0) {
		return
	}
	naming, err := world{kube: r.Kube, tenant: r.tenantKey}.membershipsNaming(ctx, obj)
	if err != nil {
		// They see the change at their next resync.
		log.FromContext(ctx).Error(err, "Listing the memberships that name the object to wake them")
		return
	}
	for i := range naming {
		select {
		case r.MembershipEvents <- event.GenericEvent{Object: &naming[i]}:
		default: // full: the resync catches up
		}
	}
}

// invitation resends a pending user's invitation when the annotation asks for it or
// spec.invitation says it is due. It returns how long until the next automatic resend.
func (r *UserReconciler) invitation(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, live *cipherscale.User) (time.Duration, error) {
	now := r.Clock.Now()
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
	inv, err := r.reserveInvitation(ctx, obj)
	switch {
	case errors.Is(err, tenant.ErrInvitationsNotRestored):
		return invitationRestoreRetry, nil
	case err != nil:
		return 0, err
	case !inv.OK:
		// Deferred, the request kept: it is answered once the oldest send leaves the window.
		r.invitationDeferredEvent(obj, live.ID, inv)
		return inv.Until.Sub(now), nil
	}
	log.FromContext(ctx).Info("Resending invitation", "requested", d.Requested)
	err = r.Tenant.ResendInvitation(ctx, live.ID)
	if err != nil && invitationNotSent(err) {
		r.cancelInvitation(obj, inv.At)
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
	st.SentTimes = r.sentTimes(obj)
	if d.Requested {
		st.LastResendRequest = d.RequestValue
	} else {
		st.Resends++
	}
	r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventInvitationResent, "ResendInvitation", "Resent the invitation of tenant user %s", live.ID)
	return plan.DecideInvitation(&obj.Spec, st, live.Status, annotation, now).Next, nil
}

// reconcileDelete carries out the deletion policy on the recorded tenant user, then releases the
// finalizer. Every decision rests on the API's answer by id, never on the snapshot: a user is
// gone when a read or a delete by id answers 404. An object with no recorded id and no pending
// create never created or adopted anyone and is released without a call. The tenant owner is
// never deleted or deactivated.
func (r *UserReconciler) reconcileDelete(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, iamv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	gen := obj.Generation
	if isPaused(obj) {
		markNotReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonPaused,
			"Paused: deletion waits until the cipherscale.com/paused annotation is removed (or set deletionPolicy Orphan)")
		return ctrl.Result{}, nil
	}
	policy := r.deletionPolicy(ctx, obj)
	// A create this process queued for the object (a first one, or one that replaces a recorded
	// user deleted in the tenant), or for its email, is waited for: its answer says which user,
	// if any, the policy is carried out on.
	created, waiting, err := r.settleCreate(ctx, obj)
	if err != nil {
		return r.failDeleting(obj, err)
	}
	if waiting {
		markReconciling(&obj.Status.Conditions, gen, iamv1alpha1.ReasonDeleting, "Deleting: waiting for the answer of the create in flight")
		return r.resync(), nil
	}
	// Trust before any read: the id is acted on only when it is the object's own record, or the
	// namespace may adopt it.
	idn := r.identityOf(obj)
	id, own := idn.id, idn.own
	if created != "" {
		id, own = created, true
	}
	if created == "" && idn.unchecked && policy != iamv1alpha1.DeletionPolicyOrphan && !r.Trust.MayAdopt(obj.Namespace) {
		// It may have managed the user: never released silently.
		return r.stallDeleting(obj, iamv1alpha1.ReasonUnauthorized, fmt.Sprintf(
			"Deleting: deletionPolicy %s asks to remove the tenant user this object names, and the operator cannot verify the object's proof of identity because the tenant's API key cannot be read; the finalizer stays until the key is restored, the namespace may adopt users, or deletionPolicy is set to Orphan", policy)), nil
	}
	if id != "" && !own && !r.Trust.MayAdopt(obj.Namespace) {
		// An id written by hand: this object never created nor adopted that user, and is
		// released at once, touching no one.
		r.event(obj, corev1.EventTypeNormal, iamv1alpha1.ReasonAdoptionNotAllowed, "Delete",
			"Released without touching the tenant: the annotation %s is not the operator's record for this object, which never managed a tenant user", iamv1alpha1.AnnotationUserID)
		r.removalNotWanted(obj)
		return ctrl.Result{}, releaseFinalizer(ctx, r.Kube, obj, iamv1alpha1.Finalizer)
	}
	owner, err := world{kube: r.Kube, tenant: r.tenantKey}.emailOwnerFor(ctx, obj, own)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Only the object that owns the email, and that created or adopted a user, acts on it.
	acts := owner != nil && owner.UID == obj.UID && (id != "" || createPending(obj))
	fromMark := false
	switch {
	case !acts:
	case policy == iamv1alpha1.DeletionPolicyOrphan:
		r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventOrphaned, "Delete", "Left tenant user %s in the tenant (deletionPolicy Orphan)", id)
	default:
		if id == "" {
			// A create was marked but its answer never recorded: find the user by email in a
			// read of the tenant that started after the mark, then confirm it by id below.
			if id, err = r.pendingUser(ctx, obj); err != nil {
				return r.failDeleting(obj, err)
			}
			if id == "" {
				break
			}
			fromMark = true
		}
		live, _, err := r.Tenant.Get(ctx, id, true)
		switch {
		case errors.Is(err, tenant.ErrUserGone):
			log.FromContext(ctx).V(1).Info("Tenant user already gone", "id", id)
		case err != nil:
			return r.failDeleting(obj, err)
		case cipherscale.NormalizeEmail(live.Email) != cipherscale.NormalizeEmail(obj.Spec.Email):
			msg := fmt.Sprintf("Deleting: the tenant user %s recorded in the annotation %s has another email, so it is left alone; correct the annotation, or set deletionPolicy Orphan", id, iamv1alpha1.AnnotationUserID)
			r.warnOnChange(obj, iamv1alpha1.ReasonEmailMismatch, msg)
			markStalled(&obj.Status.Conditions, gen, iamv1alpha1.ReasonEmailMismatch, msg)
			return ctrl.Result{RequeueAfter: jitter(r.ResyncInterval)}, nil
		case fromMark && !r.mayManage(obj, live):
			// The mark was written by hand: this object never created nor adopted the user.
			r.event(obj, corev1.EventTypeWarning, iamv1alpha1.ReasonAdoptionNotAllowed, "Delete", "Left tenant user %s alone: this object did not create it, and its namespace may not adopt users", live.ID)
		case live.TenantOwner():
			r.event(obj, corev1.EventTypeWarning, iamv1alpha1.ReasonOwnerProtected, "Delete", "Left tenant user %s alone: the tenant owner is never deleted or deactivated", live.ID)
		case policy == iamv1alpha1.DeletionPolicyDeactivate:
			if live.Status.Normalized() != cipherscale.StatusInactive {
				// Every removal spends the tenant's budget; past it, the object waits.
				if w, err := r.reserveRemoval(ctx, obj); w != nil {
					return r.waitForRemoval(obj, w), nil
				} else if err != nil {
					return r.failDeleting(obj, err)
				}
				log.FromContext(ctx).Info("Deactivating tenant user on deletion")
				err := r.Tenant.Deactivate(ctx, live.ID)
				r.endRemoval(obj, err)
				if err != nil && !errors.Is(err, tenant.ErrUserGone) {
					return r.failDeleting(obj, fmt.Errorf("deactivating user %s: %w", live.ID, err))
				}
				r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventDeactivated, "Deactivate", "Deactivated tenant user %s on deletion", live.ID)
			}
		default:
			if w, err := r.reserveRemoval(ctx, obj); w != nil {
				return r.waitForRemoval(obj, w), nil
			} else if err != nil {
				return r.failDeleting(obj, err)
			}
			log.FromContext(ctx).Info("Deleting tenant user")
			err := r.Tenant.Delete(ctx, live.ID)
			r.endRemoval(obj, err)
			if err != nil {
				return r.failDeleting(obj, fmt.Errorf("deleting user %s: %w", live.ID, err))
			}
			r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventDeleted, "Delete", "Deleted tenant user %s", live.ID)
		}
	}
	// Whatever was decided, this object has no removal left to make: it stops waiting.
	r.removalNotWanted(obj)
	return ctrl.Result{}, releaseFinalizer(ctx, r.Kube, obj, iamv1alpha1.Finalizer)
}

// deletionPolicy is the object's deletion policy, the default when it sets none.
func (r *UserReconciler) deletionPolicy(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) iamv1alpha1.DeletionPolicy {
	if obj.Spec.DeletionPolicy != "" {
		return obj.Spec.DeletionPolicy
	}
	return r.Resolver.DefaultDeletionPolicy(ctx, r.tenantKey) // the tenant's spec.defaultDeletionPolicy
}

// deleteRefused handles the deletion of an object that may not use its tenant (refusal says
// why): the tenant cannot be reached. An object that never managed a user (no id of its own, no
// pending create) or whose policy asks for no removal (Orphan) is released at once, touching no
// one. One that did manage a user and asks for its removal is never released silently: it stays
// Stalled, saying what would release it.
func (r *UserReconciler) deleteRefused(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, refusal string) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, iamv1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	policy := r.deletionPolicy(ctx, obj)
	ann := obj.Annotations[iamv1alpha1.AnnotationUserID]
	st := obj.Status.ID
	// Without the tenant no proof can be checked: a proof that is there may be the object's own.
	managed := st != "" && (ann == "" || plan.NormalizeID(st) == plan.NormalizeID(ann)) ||
		ann != "" && obj.Annotations[iamv1alpha1.AnnotationUserIDProof] != "" ||
		createPending(obj)
	if managed && policy != iamv1alpha1.DeletionPolicyOrphan {
		return r.stallDeleting(obj, iamv1alpha1.ReasonInvalidTenant, fmt.Sprintf(
			"Deleting: deletionPolicy %s asks to remove the tenant user this object manages, and the operator cannot use its tenant (%s); the finalizer stays until the tenant can be used again (restore its key, or the namespace's access to it), or deletionPolicy is set to Orphan",
			policy, refusal)), nil
	}
	if managed {
		r.event(obj, corev1.EventTypeNormal, iamv1alpha1.EventOrphaned, "Delete", "Left the tenant user in the tenant (deletionPolicy Orphan)")
	}
	if r.Tenant != nil { // no tenant, no removal waiting in its budget
		r.removalNotWanted(obj)
	}
	return ctrl.Result{}, releaseFinalizer(ctx, r.Kube, obj, iamv1alpha1.Finalizer)
}

// stallDeleting marks an object whose deletion waits for a person Stalled, with a warning when
// the reason changes, and checks it again at the resync.
func (r *UserReconciler) stallDeleting(obj *iamv1alpha1.CipherscaleUser, reason, msg string) ctrl.Result {
	r.warnOnChange(obj, reason, msg)
	markStalled(&obj.Status.Conditions, obj.Generation, reason, msg)
	return ctrl.Result{RequeueAfter: jitter(r.ResyncInterval)}
}

// settleCreate takes, for a deletion, the answer of a create this process queued for the object:
// the id of the user it created (recorded), or, when it was refused, the pending mark cleared as
// the create pass would have. waiting: a create of the email is still queued or in flight.
func (r *UserReconciler) settleCreate(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (id string, waiting bool, err error) {
	pc, ok := r.creates.get(obj.UID)
	switch {
	case ok && !pc.done:
		return "", true, nil
	case !ok:
		return "", r.Tenant.Creating(obj.Spec.Email), nil
	}
	r.creates.forget(obj.UID)
	if pc.tenant != r.tenantKey {
		return "", false, nil
	}
	ownMark(obj, pc)
	if pc.err == nil && pc.user != nil {
		if err := r.record(ctx, obj, pc.user.ID); err != nil {
			return "", false, err
		}
		return pc.user.ID, false, nil
	}
	st := cipherscale.StatusOf(pc.err)
	if st == 409 && !pc.markedBefore || st >= 400 && st < 500 && st != 409 && st != 429 {
		// Refused: this create made nobody, and no earlier one was marked.
		if err := patchAnnotations(ctx, r.Kube, obj, map[string]string{iamv1alpha1.AnnotationCreatePending: ""}); err != nil {
			return "", false, err
		}
	}
	return "", false, nil
}

// pendingUser returns the id of the user with the object's email in a read of the tenant that
// started after this pass began, "" when that read has none. A create this process queued for
// the email has completed by then (settleCreate waits for it), and one sent by a process that is
// gone was applied long before.
func (r *UserReconciler) pendingUser(ctx context.Context, obj *iamv1alpha1.CipherscaleUser) (string, error) {
	if err := r.Tenant.RefreshIfOlder(ctx, r.Clock.Now()); err != nil {
		return "", err
	}
	u, err := r.Tenant.Lookup(ctx, obj.Spec.Email)
	if err != nil || u == nil {
		return "", err
	}
	return u.ID, nil
}

func (r *UserReconciler) failDeleting(obj *iamv1alpha1.CipherscaleUser, err error) (ctrl.Result, error) {
	v := classify(err)
	if v.turn {
		r.pass.Hold(v.requeueAfter)
		return waitTurn(&obj.Status.Conditions, obj.Generation, v), nil
	}
	// Never a silent release: the finalizer stays, and the message says what would release it.
	msg := "Deleting: " + v.message + " (the finalizer stays until the deletion policy is carried out, or deletionPolicy is set to Orphan)"
	if v.stalled && !cipherscale.IsUnauthorized(err) {
		// Nothing a person could fix in the spec: keep retrying with backoff.
		v.retry = true
	}
	r.warnOnChange(obj, v.reason, msg)
	markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.ReasonDeleting, msg)
	if v.requeueAfter > 0 {
		return ctrl.Result{RequeueAfter: v.requeueAfter}, nil
	}
	if v.retry {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.ResyncInterval}, nil
}

// fail records an error on the object and says how to retry.
func (r *UserReconciler) fail(obj *iamv1alpha1.CipherscaleUser, err error) (ctrl.Result, error) {
	v := classify(err)
	if v.turn {
		r.pass.Hold(v.requeueAfter)
		return waitTurn(&obj.Status.Conditions, obj.Generation, v), nil
	}
	if v.stalled {
		return r.stall(obj, v.reason, v.message, r.ResyncInterval), nil
	}
	r.warnOnChange(obj, v.reason, v.message)
	markReconciling(&obj.Status.Conditions, obj.Generation, v.reason, v.message)
	if v.requeueAfter > 0 {
		return ctrl.Result{RequeueAfter: v.requeueAfter}, nil
	}
	return ctrl.Result{}, err
}

// stall marks the object Stalled and rechecks it after requeue (never when zero).
func (r *UserReconciler) stall(obj *iamv1alpha1.CipherscaleUser, reason, msg string, requeue time.Duration) ctrl.Result {
	r.warnOnChange(obj, reason, msg)
	markStalled(&obj.Status.Conditions, obj.Generation, reason, msg)
	obj.Status.ObservedGeneration = obj.Generation
	return ctrl.Result{RequeueAfter: requeue}
}

// warnOnChange emits a warning event when the Ready reason changes, so that a failure repeated
// by every retry is reported once.
func (r *UserReconciler) warnOnChange(obj *iamv1alpha1.CipherscaleUser, reason, msg string) {
	if busyReason(reason) {
		return
	}
	if readyReason(obj.Status.Conditions) != reason || isReady(obj.Status.Conditions) {
		r.event(obj, corev1.EventTypeWarning, reason, "Reconcile", "%s", msg)
	}
}

func (r *UserReconciler) event(obj *iamv1alpha1.CipherscaleUser, typ, reason, action, note string, args ...any) {
	r.Recorder.Eventf(obj, nil, typ, reason, action, note, args...)
}

// resync requeues after the resync interval with up to 10% jitter either way, so that objects
// created together do not resync together.
func (r *UserReconciler) resync() ctrl.Result {
	return ctrl.Result{RequeueAfter: jitter(r.ResyncInterval)}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
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
