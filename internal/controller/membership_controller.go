package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
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

// Reconcile reads top to bottom: fetch, the scope (the tenant resolved once, the status written
// once when the pass ends, only when it changed), then the pass: deletion
// (membership_delete.go), or the finalizer, the guards, and the members observed, written and
// reported (membership_members.go).
func (r *MembershipReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	obj := &iamv1alpha1.CipherscaleGroupMembership{}
	if err := r.Kube.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.Status.DeepCopy()
	s := &membershipScope{MembershipReconciler: r, statusScope: newStatusScope(ctx, obj, before, &obj.Status,
		&obj.Status.Conditions, &obj.Status.ObservedGeneration, r.Recorder)}
	defer s.close(ctx, r.Kube, &res, &retErr)
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
// conflict), observe the members, add them, remove the undeclared (Authoritative), report.
func (s *membershipScope) reconcile(ctx context.Context, req ctrl.Request, obj *iamv1alpha1.CipherscaleGroupMembership, before *iamv1alpha1.CipherscaleGroupMembershipStatus) (ctrl.Result, error) {
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
	ctx, ok := s.enter(ctx, s.tenant, s.passWake.wakeFor(req.NamespacedName))
	if !ok {
		return ctrl.Result{RequeueAfter: passBackstop}, nil
	}
	if !obj.DeletionTimestamp.IsZero() {
		return s.reconcileDelete(ctx, obj)
	}
	if err := ensureFinalizer(ctx, s.Kube, obj, iamv1alpha1.Finalizer); err != nil {
		return ctrl.Result{}, err
	}
	groupID := plan.NormalizeID(obj.Spec.GroupID)
	if res, stop, err := s.guard(ctx, obj, groupID); stop {
		return res, err
	}
	// With no older Authoritative membership of the group, an Authoritative one owns its scope.
	authoritative := obj.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative

	v, res, stop, err := s.observeMembers(ctx, obj, groupID)
	if stop {
		return res, err
	}
	if res, stop, err := s.addMembers(ctx, obj, &v); stop {
		return res, err
	}
	if authoritative {
		if res, stop, err := s.removeUndeclared(ctx, &v); stop {
			return res, err
		}
	}
	return s.report(obj, before, &v), nil
}

// world is what the membership's pass reads of its tenant's objects.
func (s *membershipScope) world() world {
	return world{kube: s.Kube, trust: s.trust, tenant: s.key, api: s.tenant}
}

// guard runs, in order, the checks that come before anything of the members is read into the
// status: an Authoritative membership its namespace may not have, a privileged group, an older
// Authoritative membership of the group. stop is true when the pass ends with res and err.
func (s *membershipScope) guard(ctx context.Context, obj *iamv1alpha1.CipherscaleGroupMembership, groupID string) (res ctrl.Result, stop bool, err error) {
	if obj.Spec.Policy == iamv1alpha1.MembershipPolicyAuthoritative && !s.trust.MayBeAuthoritative(obj.Namespace) {
		return s.stall(iamv1alpha1.ReasonNotAllowed, authoritativeRefusedMessage(s.key, obj.Namespace)), true, nil
	}
	// A privileged group needs a privileged namespace, as a privileged role does: refused
	// before anything is written or read into the status.
	if !s.trust.Privileged.Allows(obj.Namespace) {
		privileged, err := s.world().privilegedGroup(ctx, groupID)
		if err != nil {
			res, err := s.fail(err)
			return res, true, err
		}
		if privileged {
			obj.Status.Members, obj.Status.MemberCount = nil, 0
			return s.stall(iamv1alpha1.ReasonNotAllowed, privilegedGroupRefusedMessage(s.key, obj.Namespace, "This membership's group")), true, nil
		}
	}
	winner, err := s.conflictWinner(ctx, obj)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if winner != nil {
		return s.stall(iamv1alpha1.ReasonGroupConflict, fmt.Sprintf(
			"CipherscaleGroupMembership %s/%s, created earlier, is Authoritative for this group; this object does nothing until it is gone",
			winner.Namespace, winner.Name)), true, nil
	}
	return ctrl.Result{}, false, nil
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
