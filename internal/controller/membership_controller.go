package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
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
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscalegroupmemberships,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscalegroupmemberships/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=iam.cipherscale.com,resources=cipherscalegroupmemberships/finalizers,verbs=update

// MembershipReconciler brings the members of Cipherscale groups to their
// CipherscaleGroupMemberships, under the membership rule shared with CipherscaleUsers. It holds
// what lives across requests; each reconcile works on a membershipScope.
type MembershipReconciler struct {
	Kube     client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// ResyncInterval is how often an object is compared with the tenant when nothing changed,
	// when its tenant sets no spec.resyncInterval.
	ResyncInterval          time.Duration
	MaxConcurrentReconciles int
	// Wake, when set, receives memberships to reconcile now: the CipherscaleUser reconciler
	// sends those whose pairs it wrote.
	Wake <-chan event.GenericEvent
	// Resolver finds the tenant each object names (connect, once per reconcile).
	Resolver *TenantResolver
	// passWake wakes memberships that waited for a pass of their tenant (turns.go).
	passWake *waker
}

// membershipScope is one reconcile of a CipherscaleGroupMembership: the reconciler's settings,
// the object's tenant resolved once, and the object's status, written once when the pass ends.
type membershipScope struct {
	*MembershipReconciler
	tenantScope
	*statusScope
}

// Reconcile reads top to bottom: fetch, the tenant, deletion, finalizer, conflict, observe the
// members, decide each pair with the membership rule, act, status.
func (r *MembershipReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	obj := &iamv1alpha1.CipherscaleGroupMembership{}
	if err := r.Kube.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.Status.DeepCopy()
	s := &membershipScope{MembershipReconciler: r, statusScope: newStatusScope(ctx, obj, before, &obj.Status,
		&obj.Status.Conditions, &obj.Status.ObservedGeneration, r.Recorder)}
	defer s.close(ctx, r.Kube, &retErr)
	// The tenant comes first: a finalizer needs it too.
	ts, err := r.Resolver.connect(ctx, obj, r.ResyncInterval)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.tenantScope = ts
	s.connected(ts)
	return s.reconcile(ctx, req, obj, before)
}

// reconcile is the pass, on its scope: the tenant's pass, then deletion, the guards (trust,
// conflict), observe the members, decide each pair with the membership rule, act, status.
func (s *membershipScope) reconcile(ctx context.Context, req ctrl.Request, obj *iamv1alpha1.CipherscaleGroupMembership, before *iamv1alpha1.CipherscaleGroupMembershipStatus) (res ctrl.Result, retErr error) {
	// A tenant in a 429 pause gives the worker back: the object is requeued after the pause
	// (classify), so that one tenant's throttling never holds the workers other tenants need.
	ctx = cipherscale.WithoutPauseWait(ctx)
	if s.refusal != "" {
		if !obj.DeletionTimestamp.IsZero() && len(obj.Status.Members) == 0 {
			// It never reached the tenant: nothing to carry out.
			return ctrl.Result{}, releaseFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer)
		}
		return s.stall(iamv1alpha1.ReasonInvalidTenant, s.refusal), nil
	}
	// No worker waits on a tenant: past its share of passes, or for its rate limit (turns.go).
	ctx, tenantPass, ok := enterTenant(ctx, s.tenant, obj.UID, func() { s.passWake.add(req.NamespacedName) })
	if !ok {
		return ctrl.Result{RequeueAfter: passBackstop}, nil
	}
	s.turn = tenantPass
	defer tenantPass.Release()
	defer turnResult(&res, &retErr, tenantPass)
	if !obj.DeletionTimestamp.IsZero() {
		return s.reconcileDelete(ctx, obj)
	}
	if err := ensureFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer); err != nil {
		return ctrl.Result{}, err
	}
	gen := obj.Generation
	groupID := plan.NormalizeID(obj.Spec.GroupID)
	w := world{kube: s.Kube, trust: s.trust, tenant: s.key, api: s.tenant}

	if obj.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && !s.trust.MayBeAuthoritative(obj.Namespace) {
		return s.stall(iamv1alpha1.ReasonNotAllowed, authoritativeRefusedMessage(s.key, obj.Namespace)), nil
	}
	// A privileged group needs a privileged namespace, as a privileged role does: refused
	// before anything is written or read into the status.
	if !s.trust.Privileged.Allows(obj.Namespace) {
		privileged, err := w.privilegedGroup(ctx, groupID)
		if err != nil {
			return s.fail(err)
		}
		if privileged {
			obj.Status.Members, obj.Status.MemberCount = nil, 0
			return s.stall(iamv1alpha1.ReasonNotAllowed, privilegedGroupRefusedMessage(s.key, obj.Namespace, "This membership's group")), nil
		}
	}
	winner, err := s.conflictWinner(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	if winner != nil {
		return s.stall(iamv1alpha1.ReasonGroupConflict, fmt.Sprintf(
			"CipherscaleGroupMembership %s/%s, created earlier, is Authoritative for this group; this object does nothing until it is gone",
			winner.Namespace, winner.Name)), nil
	}
	// With no older Authoritative membership of the group, an Authoritative one owns its scope.
	authoritative := obj.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative

	passStart := s.Clock.Now()
	members, err := w.resolveMembers(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	// A member whose email has a CipherscaleUser is that user's reconciler's to write: this
	// membership only reads its state. The others (email members no CipherscaleUser manages)
	// are this membership's to write. Either only when the membership may act on that person
	// (plan.TrustPolicy.MayActOnMember): a user another namespace manages, or a person this
	// namespace may not adopt, is left alone, and nothing of them is read.
	refused, refusedManaged, refusedUndeclared, err := w.refusals(ctx, obj, members)
	if err != nil {
		return ctrl.Result{}, err
	}
	var emails []string
	for i, m := range members {
		if m.user == nil && m.email != "" && !refused[i] {
			emails = append(emails, m.email)
		}
	}
	live, err := s.tenant.LookupMany(ctx, emails)
	if err != nil {
		return s.failLookup(obj, err)
	}
	readAt := s.tenant.FetchedAt()
	if s.newlyMissing(obj, emails, live) {
		// Before calling a member missing, read the tenant again: a user added by hand a moment
		// ago is not in the snapshot. Concurrent reads are shared. Only members this membership
		// writes can force a read, and only once: the status then reports them.
		if err := s.tenant.RefreshIfOlder(ctx, passStart); err != nil {
			return s.fail(err)
		}
		if live, err = s.tenant.LookupMany(ctx, emails); err != nil {
			return s.failLookup(obj, err)
		}
		readAt = s.tenant.FetchedAt()
	}

	statuses := make([]iamv1alpha1.MemberStatus, 0, len(members))
	declared := map[string]bool{}
	var added, removed, blocked int
	for i, m := range members {
		if refused[i] {
			statuses = append(statuses, iamv1alpha1.MemberStatus{Email: m.email, State: iamv1alpha1.MemberStateNotAllowed})
			continue
		}
		st := iamv1alpha1.MemberStatus{Email: m.email, UserID: knownID(obj, m)}
		if m.spec.UserRef != nil {
			st.UserRef = m.spec.UserRef.Name
		}
		if m.user != nil || m.spec.UserRef != nil {
			declared[m.email] = m.email != ""
			state, stuck, id, at, err := s.managedMember(ctx, m.user, groupID)
			if err != nil {
				return s.fail(err)
			}
			st.State = state
			if id != "" {
				st.UserID = id
			}
			if stuck {
				blocked++
			}
			if !at.IsZero() && at.Before(readAt) {
				readAt = at
			}
			statuses = append(statuses, st)
			continue
		}
		u := live[m.email]
		switch {
		case u == nil:
			st.State = iamv1alpha1.MemberStateUserNotFound
		case u.TenantOwner() && !inGroup(u, groupID):
			// The tenant owner is read-only to the operator: never added.
			declared[m.email] = true
			st.UserID = u.ID
			st.State = iamv1alpha1.MemberStateOwnerProtected
		default:
			declared[m.email] = true
			st.UserID = u.ID
			st.State = iamv1alpha1.MemberStateMember
			if !inGroup(u, groupID) {
				s.log.Info("Adding member to group")
				if err := s.tenant.AddToGroups(ctx, u.ID, []string{groupID}); err != nil {
					if errors.Is(err, tenant.ErrUserGone) {
						st.State = iamv1alpha1.MemberStateUserNotFound
						break
					}
					return s.fail(fmt.Errorf("adding user %s to group %s: %w", u.ID, groupID, err))
				}
				added++
			}
		}
		statuses = append(statuses, st)
	}

	if authoritative {
		present, err := s.tenant.UsersInGroup(ctx, groupID)
		if err != nil {
			return s.fail(err)
		}
		for i := range present {
			u := &present[i]
			if declared[cipherscale.NormalizeEmail(u.Email)] || u.TenantOwner() {
				continue // the tenant owner is read-only to the operator
			}
			owner, err := w.emailOwner(ctx, u.Email)
			if err != nil {
				return ctrl.Result{}, err
			}
			if owner != nil && owner.DeletionTimestamp.IsZero() {
				continue // its CipherscaleUser's reconciler writes this pair
			}
			f, err := w.pairFacts(ctx, u.Email, groupID, true, "")
			if err != nil {
				return ctrl.Result{}, err
			}
			if plan.DecidePair(f) != plan.Remove {
				continue
			}
			s.log.Info("Removing undeclared member from group")
			if err := s.tenant.RemoveFromGroup(ctx, u.ID, groupID); err != nil && !errors.Is(err, tenant.ErrUserGone) {
				return s.fail(fmt.Errorf("removing user %s from group %s: %w", u.ID, groupID, err))
			}
			removed++
		}
	}
	if added > 0 || removed > 0 {
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventMembersUpdated, "UpdateMembers", "Group %s: added %d members, removed %d", groupID, added, removed)
	}

	if (added > 0 || removed > 0) && obj.Status.ObservedGeneration == gen && isReady(obj.Status.Conditions) {
		driftCorrections.WithLabelValues("CipherscaleGroupMembership").Inc()
		s.event(corev1.EventTypeNormal, iamv1alpha1.EventDriftCorrected, "Correct", "Corrected drift in group %s: added %d members, removed %d", groupID, added, removed)
	}
	counts := map[iamv1alpha1.MemberState]int{}
	for _, st := range statuses {
		counts[st.State]++
	}
	if before.LastSyncTime == nil && len(statuses) == counts[iamv1alpha1.MemberStateMember] {
		timeToReady.WithLabelValues("CipherscaleGroupMembership").Observe(s.Clock.Since(obj.CreationTimestamp.Time).Seconds())
	}
	obj.Status.Members = statuses
	obj.Status.MemberCount = int32(counts[iamv1alpha1.MemberStateMember])
	obj.Status.LastSyncTime = timePtr(readAt)
	s.settle(gen)
	switch {
	case refusedManaged > 0:
		s.stall(iamv1alpha1.ReasonNotAllowed, managedMembersRefusedMessage(s.key, obj.Namespace, refusedManaged, refusedUndeclared))
	case refusedUndeclared > 0:
		s.stall(iamv1alpha1.ReasonAdoptionNotAllowed, emailMembersRefusedMessage(s.key, obj.Namespace, refusedUndeclared))
	case counts[iamv1alpha1.MemberStateUserNotFound] > 0:
		s.stall(iamv1alpha1.ReasonUserNotFound, fmt.Sprintf(
			"%d members have no user in the tenant (see status.members); the other members are in the group", counts[iamv1alpha1.MemberStateUserNotFound]))
	case counts[iamv1alpha1.MemberStateWaitingForUser] > 0 && s.tenant.GroupRefused(groupID):
		// The members' own reconcilers write their pairs; the tenant refused one as unknown.
		s.stall(iamv1alpha1.ReasonInvalidReference, "The tenant has no group with this id: adding a member to it was refused")
	case blocked > 0:
		s.stall(iamv1alpha1.ReasonWaitingForUser, fmt.Sprintf(
			"%d members wait for a CipherscaleUser that is stalled or paused (see status.members and those objects' conditions)", blocked))
	case counts[iamv1alpha1.MemberStateWaitingForUser] > 0:
		msg := fmt.Sprintf("Waiting for %d CipherscaleUsers to be created in the tenant (see status.members)", counts[iamv1alpha1.MemberStateWaitingForUser])
		markReconciling(&obj.Status.Conditions, gen, iamv1alpha1.ReasonWaitingForUser, msg)
	case counts[iamv1alpha1.MemberStateOwnerProtected] > 0:
		markReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonOwnerProtected, fmt.Sprintf(
			"%d members are in the group; the tenant owner is not: the owner is read-only to the operator, which never adds it", counts[iamv1alpha1.MemberStateMember]))
	default:
		markReady(&obj.Status.Conditions, gen, iamv1alpha1.ReasonUpToDate, fmt.Sprintf("All %d members are in the group", len(statuses)))
	}
	return s.resyncResult(), nil
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
func (s *membershipScope) failLookup(obj *iamv1alpha1.CipherscaleGroupMembership, err error) (ctrl.Result, error) {
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

// conflictWinner returns the older Authoritative membership of the same group when obj is a
// newer Authoritative one, else nil.
func (s *membershipScope) conflictWinner(ctx context.Context, obj *iamv1alpha1.CipherscaleGroupMembership) (*iamv1alpha1.CipherscaleGroupMembership, error) {
	if obj.Spec.Policy != iamv1alpha1.MembershipPolicyAuthoritative {
		return nil, nil
	}
	var list iamv1alpha1.CipherscaleGroupMembershipList
	if err := s.Kube.List(ctx, &list, client.MatchingFields{indexMembershipGroup: scoped(tenantOf(obj), plan.NormalizeID(obj.Spec.GroupID))}); err != nil {
		return nil, fmt.Errorf("listing CipherscaleGroupMemberships by group: %w", err)
	}
	owner := authoritativeOwner(list.Items, s.trust)
	if owner != nil && owner.UID != obj.UID {
		return owner, nil
	}
	return nil, nil
}

func inGroup(u *cipherscale.User, groupID string) bool {
	for _, g := range u.Groups {
		if plan.NormalizeID(g.ID) == groupID {
			return true
		}
	}
	return false
}

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
	w := world{kube: s.Kube, trust: s.trust, tenant: s.key, api: s.tenant}
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

// SetupWithManager registers the controller. Besides its own kind it watches the
// CipherscaleUsers its members name (a user created in the tenant, or changing its groups,
// changes what the membership must do) and the other memberships of the same group.
func (r *MembershipReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Kube == nil || r.Resolver == nil || r.Recorder == nil || r.Clock == nil {
		return errors.New("MembershipReconciler needs Kube, Resolver, Recorder and Clock")
	}
	if r.ResyncInterval <= 0 {
		return errors.New("MembershipReconciler needs a positive ResyncInterval")
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 1
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("cipherscalegroupmembership").
		For(&iamv1alpha1.CipherscaleGroupMembership{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		Watches(&iamv1alpha1.CipherscaleUser{}, handler.EnqueueRequestsFromMapFunc(r.membershipsNaming),
			builder.WithPredicates(userChangedForMemberships())).
		Watches(&iamv1alpha1.CipherscaleGroupMembership{}, handler.EnqueueRequestsFromMapFunc(r.sameGroup),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: rateLimiter(r.ResyncInterval)})
	b = watchTenants(b, mgr, r.Resolver, func() client.ObjectList { return &iamv1alpha1.CipherscaleGroupMembershipList{} })
	if r.Wake != nil {
		b = b.WatchesRawSource(source.Channel(r.Wake, &handler.EnqueueRequestForObject{}))
	}
	r.passWake = &waker{}
	b = b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		r.passWake.set(q)
		return nil
	}))
	return b.Complete(r)
}

// userChangedForMemberships passes the CipherscaleUser events that can change a membership's
// work: creation and deletion, a tenant id appearing or changing, spec changes, deletion
// starting, a pause set or lifted, Stalled appearing or going.
func userChangedForMemberships() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return true },
		DeleteFunc: func(event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*iamv1alpha1.CipherscaleUser)
			n, ok2 := e.ObjectNew.(*iamv1alpha1.CipherscaleUser)
			if !ok1 || !ok2 {
				return false
			}
			return o.Status.ID != n.Status.ID || recordedID(o) != recordedID(n) || o.Generation != n.Generation ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() || isPaused(o) != isPaused(n) ||
				meta.IsStatusConditionTrue(o.Status.Conditions, iamv1alpha1.ConditionStalled) !=
					meta.IsStatusConditionTrue(n.Status.Conditions, iamv1alpha1.ConditionStalled)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// membershipsNaming enqueues the memberships that name a CipherscaleUser, by reference or email,
// and those of the groups its spec.groups names.
func (r *MembershipReconciler) membershipsNaming(ctx context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*iamv1alpha1.CipherscaleUser)
	if !ok {
		return nil
	}
	keys := map[client.ObjectKey]bool{}
	collect := func(field, value string) {
		var list iamv1alpha1.CipherscaleGroupMembershipList
		if err := r.Kube.List(ctx, &list, client.MatchingFields{field: scoped(tenantOf(u), value)}); err != nil {
			return
		}
		for i := range list.Items {
			keys[client.ObjectKeyFromObject(&list.Items[i])] = true
		}
	}
	collect(indexMembershipMember, memberKeyRef(u.Namespace, u.Name))
	collect(indexMembershipMember, memberKeyEmail(u.Spec.Email))
	if u.Spec.Groups != nil {
		for _, g := range *u.Spec.Groups {
			collect(indexMembershipGroup, plan.NormalizeID(g))
		}
	}
	return requests(keys)
}

// sameGroup enqueues the other memberships of the same group.
func (r *MembershipReconciler) sameGroup(ctx context.Context, o client.Object) []reconcile.Request {
	m, ok := o.(*iamv1alpha1.CipherscaleGroupMembership)
	if !ok {
		return nil
	}
	var list iamv1alpha1.CipherscaleGroupMembershipList
	if err := r.Kube.List(ctx, &list, client.MatchingFields{indexMembershipGroup: scoped(tenantOf(m), plan.NormalizeID(m.Spec.GroupID))}); err != nil {
		return nil
	}
	keys := map[client.ObjectKey]bool{}
	for i := range list.Items {
		if list.Items[i].UID != m.UID {
			keys[client.ObjectKeyFromObject(&list.Items[i])] = true
		}
	}
	return requests(keys)
}

func requests(keys map[client.ObjectKey]bool) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(keys))
	for k := range keys {
		reqs = append(reqs, reconcile.Request{NamespacedName: k})
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].String() < reqs[j].String() })
	return reqs
}
