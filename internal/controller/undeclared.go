package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// The names the undeclared-users pass uses.
const (
	// reasonInvalidUndeclaredUsers: spec.undeclaredUsers cannot be applied (an exclude pattern
	// that is not an address pattern); nothing is acted on until it is fixed.
	reasonInvalidUndeclaredUsers = "InvalidUndeclaredUsers"
	// eventUndeclaredUsers: the number of undeclared users changed.
	eventUndeclaredUsers = "UndeclaredUsers"
	// eventUndeclaredUserRemoved: an undeclared user was deactivated or deleted.
	eventUndeclaredUserRemoved = "UndeclaredUserRemoved"
	// eventRemovalsAllowed: a person allowed more removals with the annotation.
	eventRemovalsAllowed = "RemovalsAllowed"
	// undeclaredBudgetPrefix begins the budget key of an undeclared user's removal.
	undeclaredBudgetPrefix = "undeclared/"
)

// defaultGracePeriod is the grace period of a tenant that sets none.
const defaultGracePeriod = 24 * time.Hour

// undeclaredPolicy is what a tenant does about its undeclared users: its spec.undeclaredUsers.
type undeclaredPolicy struct {
	Policy      plan.UndeclaredPolicy
	Exclude     []string
	GracePeriod time.Duration
}

// undeclaredPolicyOf reads a tenant's spec.undeclaredUsers (nil: Ignore).
func undeclaredPolicyOf(s *iamv1alpha1.UndeclaredUsersSpec) undeclaredPolicy {
	p := undeclaredPolicy{Policy: plan.UndeclaredIgnore, GracePeriod: defaultGracePeriod}
	if s == nil {
		return p
	}
	if s.Policy != "" {
		p.Policy = plan.UndeclaredPolicy(s.Policy)
	}
	p.Exclude = s.Exclude
	if s.GracePeriod != nil {
		p.GracePeriod = s.GracePeriod.Duration
	}
	return p
}

// graceClock remembers, per tenant, when each undeclared user open to action was first seen so.
// It is kept in memory: after a restart the grace periods start again, which only delays.
type graceClock struct {
	mu sync.Mutex
	m  map[tenant.Key]map[string]time.Time
}

func (g *graceClock) get(k tenant.Key) map[string]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[k]
}

func (g *graceClock) set(k tenant.Key, firstSeen map[string]time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[tenant.Key]map[string]time.Time{}
	}
	g.m[k] = firstSeen
}

func (g *graceClock) forget(k tenant.Key) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, k)
}

// undeclaredRun is one pass over a tenant's undeclared users.
type undeclaredRun struct {
	Tenant *tenant.Tenant
	Budget *tenant.RemovalBudget
	// Users is the list just read from the API.
	Users []cipherscale.User
	// Declared is the normalized emails that the tenant's objects declare.
	Declared map[string]struct{}
	Policy   undeclaredPolicy
	// FirstSeen is the grace record of the tenant, read only.
	FirstSeen map[string]time.Time
	Now       time.Time
	// DeclaredNow reports whether an email is declared now, read again just before a removal:
	// an object created since Declared was read saves its user.
	DeclaredNow func(ctx context.Context, email string) (bool, error)
}

// undeclaredOutcome is what a pass decided and did.
type undeclaredOutcome struct {
	Plan plan.UndeclaredPlan
	// Removed is how many users were deactivated or deleted.
	Removed int
	// Waiting is how many removals of undeclared users wait for the budget, and RetryAfter how
	// long until the budget frees its next unit.
	Waiting    int
	RetryAfter time.Duration
	// Failed joins the errors of removals that failed; they are tried again next pass.
	Failed error
}

// requeue returns how soon the pass wants to run again (0: no sooner than the resync).
func (o undeclaredOutcome) requeue() time.Duration {
	d := o.Plan.NextDue
	if o.Waiting > 0 && o.RetryAfter > 0 && (d == 0 || o.RetryAfter < d) {
		d = o.RetryAfter
	}
	return d
}

// runUndeclared plans the tenant's undeclared users and, under Deactivate or Delete, removes
// those past the grace period. Each removal is confirmed by a GET by id first (never from the
// list alone): a user gone, the owner, an excluded or now-declared address, or (for Deactivate)
// a user already inactive is left alone. Each removal spends a unit of the tenant's budget;
// past it, removals wait. An error is a policy that cannot be applied, and nothing was done.
func runUndeclared(ctx context.Context, in undeclaredRun) (undeclaredOutcome, error) {
	declared := make([]string, 0, len(in.Declared))
	for e := range in.Declared {
		declared = append(declared, e)
	}
	p, err := plan.PlanUndeclared(plan.UndeclaredInput{
		Users: in.Users, Declared: declared, Exclude: in.Policy.Exclude, Policy: in.Policy.Policy,
		GracePeriod: in.Policy.GracePeriod, FirstSeen: in.FirstSeen, Now: in.Now,
	})
	if err != nil {
		return undeclaredOutcome{}, err
	}
	out := undeclaredOutcome{Plan: p}
	ids, deleting := p.Deactivate, false
	if len(p.Delete) > 0 {
		ids, deleting = p.Delete, true
	}
	wanted := make(map[string]bool, len(ids))
	var errs []error
	for _, id := range ids {
		wanted[undeclaredBudgetPrefix+id] = true
		removed, waitFor, err := removeUndeclared(ctx, in, id, deleting)
		switch {
		case err != nil:
			errs = append(errs, err)
		case waitFor > 0:
			out.Waiting++
			if out.RetryAfter == 0 || waitFor < out.RetryAfter {
				out.RetryAfter = waitFor
			}
		case removed:
			out.Removed++
		}
	}
	// Removals that waited and are no longer wanted (the user declared again, excluded, gone,
	// or the policy changed) stop waiting.
	for _, k := range in.Budget.WaitingKeys() {
		if strings.HasPrefix(k, undeclaredBudgetPrefix) && !wanted[k] {
			in.Budget.Done(k)
		}
	}
	out.Failed = errors.Join(errs...)
	return out, nil
}

// removeUndeclared deactivates or deletes one undeclared user within the budget. It reports
// whether the user was removed, or how long the removal waits for the budget.
func removeUndeclared(ctx context.Context, in undeclaredRun, id string, deleting bool) (bool, time.Duration, error) {
	logger := log.FromContext(ctx)
	key := undeclaredBudgetPrefix + id
	res := in.Budget.Reserve(key)
	if !res.OK {
		return false, max(res.RetryAfter, time.Second), nil
	}
	u, _, err := in.Tenant.Get(ctx, id, true)
	switch {
	case errors.Is(err, tenant.ErrUserGone):
		in.Budget.Release(key) // no call was made
		return false, 0, nil
	case err != nil:
		in.Budget.Release(key)
		return false, 0, err
	}
	email := cipherscale.NormalizeEmail(u.Email)
	skip := u.TenantOwner() || excludedAddress(in.Policy.Exclude, email) ||
		(!deleting && (u.Status.Normalized() == cipherscale.StatusInactive || !u.Status.Known()))
	if !skip && email != "" {
		now, err := in.DeclaredNow(ctx, email)
		if err != nil {
			in.Budget.Release(key)
			return false, 0, err
		}
		skip = now
	}
	if skip {
		in.Budget.Release(key)
		return false, 0, nil
	}
	// Saved before the call: a restart must count it.
	if err := in.Budget.Commit(ctx); err != nil {
		in.Budget.Release(key)
		return false, 0, err
	}
	if deleting {
		logger.Info("Deleting undeclared user", "id", id)
		err = in.Tenant.Delete(ctx, id)
	} else {
		logger.Info("Deactivating undeclared user", "id", id)
		err = in.Tenant.Deactivate(ctx, id)
	}
	if err != nil {
		if refusedWithoutChange(err) {
			in.Budget.Release(key)
		} else {
			in.Budget.Done(key) // it may have been made: the unit stays spent
		}
		return false, 0, fmt.Errorf("removing undeclared user %s: %w", id, err)
	}
	in.Budget.Done(key)
	return true, 0, nil
}

// refusedWithoutChange reports whether the API refused a call, so that it certainly removed
// nobody: a 4xx answer.
func refusedWithoutChange(err error) bool {
	s := cipherscale.StatusOf(err)
	return s >= http.StatusBadRequest && s < http.StatusInternalServerError
}

// excludedAddress reports whether email matches one of the exclude patterns.
func excludedAddress(patterns []string, email string) bool {
	for _, p := range patterns {
		if plan.MatchExclude(p, email) {
			return true
		}
	}
	return false
}

// declaredNow reports, from the manager's cache, whether an object of the tenant declares email
// now: a CipherscaleUser (being deleted included) or an email member of a membership.
func declaredNow(kube client.Reader, key tenant.Key, usable func(namespace string) bool) func(ctx context.Context, email string) (bool, error) {
	return func(ctx context.Context, email string) (bool, error) {
		users := &iamv1alpha1.CipherscaleUserList{}
		if err := kube.List(ctx, users, client.MatchingFields{indexUserEmail: scoped(key, cipherscale.NormalizeEmail(email))}); err != nil {
			return false, fmt.Errorf("listing the CipherscaleUsers of an address: %w", err)
		}
		for i := range users.Items {
			u := &users.Items[i]
			if tenantKeyOf(u.Namespace, u.Spec.TenantRef) == key && !refusedHere(u.Status.Conditions, u.Status.ID, u.Namespace, usable) {
				return true, nil
			}
		}
		ms := &iamv1alpha1.CipherscaleGroupMembershipList{}
		if err := kube.List(ctx, ms, client.MatchingFields{indexMembershipMember: scoped(key, memberKeyEmail(email))}); err != nil {
			return false, fmt.Errorf("listing the memberships of an address: %w", err)
		}
		for i := range ms.Items {
			m := &ms.Items[i]
			if tenantKeyOf(m.Namespace, m.Spec.TenantRef) == key && !refusedHere(m.Status.Conditions, "", m.Namespace, usable) {
				return true, nil
			}
		}
		return false, nil
	}
}

// declaredEmails returns the normalized emails the objects declare: every CipherscaleUser's,
// and every email member of a membership. Objects being deleted still declare their email:
// their own finalizer decides what happens to their user, and no user is removed twice. A
// refused object that manages nobody declares nobody (refusedClaim): an object a namespace may
// not have does not shield a user from the policy.
func declaredEmails(users *iamv1alpha1.CipherscaleUserList, memberships *iamv1alpha1.CipherscaleGroupMembershipList, usable func(namespace string) bool) map[string]struct{} {
	out := map[string]struct{}{}
	for i := range users.Items {
		u := &users.Items[i]
		if refusedHere(u.Status.Conditions, u.Status.ID, u.Namespace, usable) {
			continue
		}
		if e := cipherscale.NormalizeEmail(u.Spec.Email); e != "" {
			out[e] = struct{}{}
		}
	}
	for i := range memberships.Items {
		if refusedHere(memberships.Items[i].Status.Conditions, "", memberships.Items[i].Namespace, usable) {
			continue
		}
		for _, mem := range memberships.Items[i].Spec.Members {
			if e := cipherscale.NormalizeEmail(mem.Email); e != "" {
				out[e] = struct{}{}
			}
		}
	}
	return out
}

// setUndeclaredMetric sets the tenant's series, or deletes it under Ignore.
func setUndeclaredMetric(key tenant.Key, p plan.UndeclaredPlan) {
	if p.Report == nil {
		undeclaredUsers.DeleteLabelValues(key.String())
		return
	}
	undeclaredUsers.WithLabelValues(key.String()).Set(float64(p.Report.Count))
}

// refusedHere is refusedClaim as the tenant sees it now: an InvalidTenant recorded while the
// tenant did not exist yet or was not Ready is stale once the tenant admits the object's
// namespace (usable), and must not make the tenant's first passes take the people its objects
// declare for undeclared. An object of a namespace the tenant does not admit stays refused.
func refusedHere(conds []metav1.Condition, statusID, namespace string, usable func(namespace string) bool) bool {
	if !refusedClaim(conds, statusID) {
		return false
	}
	return readyReason(conds) != iamv1alpha1.ReasonInvalidTenant || !usable(namespace)
}

// undeclared applies the tenant's removal budget (spec.removalBudget and the allow-removals
// annotation) and its undeclared-users policy, and reports both in the status. The tenant stays
// Ready (its objects may use it) and is also Stalled while removals wait for the budget or the
// policy cannot be applied. It returns how soon it wants to run again. It needs the cache of
// CipherscaleUsers and memberships filled, or everyone would look undeclared: controller-runtime
// starts this controller's workers only once the informers of its watches (both kinds) synced.
func (r *TenantReconciler) undeclared(ctx context.Context, obj tenantObject, key tenant.Key, t *tenant.Tenant, list []cipherscale.User, declared map[string]struct{}, usable func(namespace string) bool) (time.Duration, error) {
	logger := log.FromContext(ctx)
	st, gen := obj.GetTenantStatus(), obj.GetGeneration()
	budget := r.applyBudget(ctx, obj, key)

	before := st.Undeclared.DeepCopy()
	policy := undeclaredPolicyOf(obj.Settings().UndeclaredUsers)
	var out undeclaredOutcome
	err := r.partialView(key, policy)
	if err == nil {
		out, err = runUndeclared(ctx, undeclaredRun{
			Tenant: t, Budget: budget, Users: list, Declared: declared,
			Policy:    policy,
			FirstSeen: r.grace.get(key), Now: r.Clock.Now(),
			DeclaredNow: declaredNow(r.Kube, key, usable),
		})
	}
	if err != nil {
		msg := "spec.undeclaredUsers cannot be applied, nothing is acted on: " + err.Error()
		if c := meta.FindStatusCondition(st.Conditions, iamv1alpha1.ConditionStalled); c == nil || c.Reason != reasonInvalidUndeclaredUsers {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, reasonInvalidUndeclaredUsers, "Check", "%s", msg)
		}
		set(&st.Conditions, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, gen, reasonInvalidUndeclaredUsers, msg)
		r.reportBudgetHold(ctx, obj, budget)
		return 0, nil
	}
	r.grace.set(key, out.Plan.FirstSeen)
	p := out.Plan
	n := int32(p.Declared)
	st.Declared = &n
	setUndeclaredMetric(key, p)
	if p.Report == nil {
		st.Undeclared = nil
	} else {
		st.Undeclared = &iamv1alpha1.UndeclaredStatus{Count: int32(p.Report.Count), Emails: p.Report.Emails}
		if before == nil || before.Count != st.Undeclared.Count {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, eventUndeclaredUsers, "Report",
				"%d users of the tenant are undeclared: no CipherscaleUser or membership of the tenant names them", p.Report.Count)
		}
		logger.V(1).Info("Undeclared users", "plan", p.String())
	}
	if out.Removed > 0 {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, eventUndeclaredUserRemoved, "Remove",
			"%s %d undeclared users past the grace period of %s", removedVerb(p), out.Removed, undeclaredPolicyOf(obj.Settings().UndeclaredUsers).GracePeriod)
	}
	if out.Failed != nil {
		logger.Info("Some undeclared users could not be removed: tried again next pass", "error", out.Failed.Error())
	}

	r.reportBudgetHold(ctx, obj, budget)
	after := out.requeue()
	if out.Failed != nil && (after == 0 || after > r.RecheckInterval) {
		after = r.RecheckInterval
	}
	return after, nil
}

// partialView refuses a policy that removes undeclared users when this operator cannot see every
// object that may declare one: it watches only some namespaces, and the tenant is a
// ClusterCipherscaleTenant, whose objects may live in namespaces it does not watch (a user
// declared there would look undeclared, and be removed). A CipherscaleTenant's objects all live
// in its own namespace, which the operator watches since it sees the tenant. Report stays
// allowed: it removes nobody.
func (r *TenantReconciler) partialView(key tenant.Key, p undeclaredPolicy) error {
	if !r.WatchesSomeNamespaces || key.Kind != tenant.KindCluster {
		return nil
	}
	if p.Policy == plan.UndeclaredDeactivate || p.Policy == plan.UndeclaredDelete {
		return fmt.Errorf("policy %s removes users, and this operator watches only some namespaces (--watch-namespaces): "+
			"a user declared by an object in a namespace it does not watch would look undeclared; use Report, or an operator that watches every namespace", p.Policy)
	}
	return nil
}

// removedVerb says what the policy did to the users it removed.
func removedVerb(p plan.UndeclaredPlan) string {
	if len(p.Delete) > 0 {
		return "Deleted"
	}
	return "Deactivated"
}
