package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// DefaultUndeclared applies the undeclared-users policy of the default tenant, which has no
// tenant object: its policy comes from the operator's flags (--undeclared-users-policy,
// --undeclared-exclude, --undeclared-grace-period), and its report goes to a log line and to the
// metric cipherscale_undeclared_users{tenant="default"}. Its removals spend the default tenant's
// removal budget. It runs on the leader only, once the manager's cache has synced, every
// Interval (sooner when a grace period ends or the budget frees a unit).
type DefaultUndeclared struct {
	// Kube reads CipherscaleUsers and memberships from the manager's cache.
	Kube client.Reader
	// Cache is waited for before the first pass: a cache not yet filled would make everyone
	// look undeclared.
	Cache   cache.Cache
	Tenants *tenant.Registry
	Policy  UndeclaredPolicy
	// Interval is the resync interval of the default tenant.
	Interval time.Duration
	Clock    clock.PassiveClock

	grace graceClock
	last  undeclaredFigures
}

// undeclaredFigures is what the log line reports, to log at default verbosity only changes.
type undeclaredFigures struct{ count, declared, removed, waiting int }

// ValidateUndeclaredPolicy reports a policy that cannot be applied: an unknown policy, a
// negative grace period or an exclude pattern that is not an address pattern.
func ValidateUndeclaredPolicy(p UndeclaredPolicy) error {
	errs := []error{plan.ValidateUndeclaredPolicy(p.Policy)}
	if p.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("the grace period %v is negative", p.GracePeriod))
	}
	for _, pat := range p.Exclude {
		errs = append(errs, plan.ValidateExcludePattern(pat))
	}
	return errors.Join(errs...)
}

// NeedLeaderElection: only the leader removes users.
func (d *DefaultUndeclared) NeedLeaderElection() bool { return true }

// Start runs a pass every Interval until ctx ends.
func (d *DefaultUndeclared) Start(ctx context.Context) error {
	if d.Kube == nil || d.Cache == nil || d.Tenants == nil || d.Interval <= 0 {
		return errors.New("DefaultUndeclared needs Kube, Cache, Tenants and a positive Interval")
	}
	if err := ValidateUndeclaredPolicy(d.Policy); err != nil {
		return err
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	logger := log.FromContext(ctx).WithName("undeclared").WithValues("tenant", tenant.DefaultKey.String())
	ctx = log.IntoContext(ctx, logger)
	if !d.Cache.WaitForCacheSync(ctx) {
		return nil // stopped before the cache synced
	}
	for {
		after, err := d.pass(ctx)
		if err != nil {
			logger.Info("Undeclared users of the default tenant not checked: tried again", "error", err.Error())
			after = min(d.Interval, maxRecheckInterval)
		}
		if after <= 0 || after > d.Interval {
			after = jitter(d.Interval)
		}
		timer := time.NewTimer(after)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// pass reads the default tenant's users and its objects, reports and, under Deactivate or
// Delete, removes. It returns how soon it wants to run again.
func (d *DefaultUndeclared) pass(ctx context.Context) (time.Duration, error) {
	logger := log.FromContext(ctx)
	t, ok := d.Tenants.Get(tenant.DefaultKey)
	if !ok {
		return 0, errors.New("the registry has no default tenant")
	}
	list, err := t.API().ListUsers(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing the tenant's users: %w", err)
	}
	users := &iamv1alpha1.CipherscaleUserList{}
	if err := d.Kube.List(ctx, users, client.MatchingFields{indexTenant: tenant.DefaultKey.String()}); err != nil {
		return 0, fmt.Errorf("listing the CipherscaleUsers of the default tenant: %w", err)
	}
	memberships := &iamv1alpha1.CipherscaleGroupMembershipList{}
	if err := d.Kube.List(ctx, memberships, client.MatchingFields{indexTenant: tenant.DefaultKey.String()}); err != nil {
		return 0, fmt.Errorf("listing the memberships of the default tenant: %w", err)
	}
	budget := d.Tenants.Budget(tenant.DefaultKey)
	out, err := runUndeclared(ctx, undeclaredRun{
		Tenant: t, Budget: budget, Users: list, Declared: declaredEmails(users, memberships),
		Policy: d.Policy, FirstSeen: d.grace.get(tenant.DefaultKey), Now: d.Clock.Now(),
		DeclaredNow: declaredNow(d.Kube, tenant.DefaultKey),
	})
	if err != nil {
		return 0, err
	}
	d.grace.set(tenant.DefaultKey, out.Plan.FirstSeen)
	setUndeclaredMetric(tenant.DefaultKey, out.Plan)
	if out.Plan.Report == nil {
		return 0, nil
	}
	now := undeclaredFigures{count: out.Plan.Report.Count, declared: out.Plan.Declared, removed: out.Removed, waiting: out.Waiting}
	l := logger.V(1)
	if now != d.last {
		l = logger
	}
	d.last = now
	// The emails are not logged: the metric and this line say how many; the tenant's console
	// says who.
	l.Info("Undeclared users of the default tenant", "policy", string(d.Policy.Policy),
		"undeclared", now.count, "declared", now.declared, "protected", out.Plan.Protected,
		"inGrace", out.Plan.InGrace, "removed", now.removed, "waitingForBudget", now.waiting)
	if out.Waiting > 0 {
		logger.Info("Removals of undeclared users wait for the removal budget: raise --removal-budget or restore the objects",
			"waiting", out.Waiting, "retryAfter", out.RetryAfter.String())
	}
	if out.Failed != nil {
		logger.Info("Some undeclared users could not be removed: tried again next pass", "error", out.Failed.Error())
		return min(d.Interval, maxRecheckInterval), nil
	}
	return out.requeue(), nil
}
