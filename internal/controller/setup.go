package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// Options configure both controllers.
type Options struct {
	// Tenant is the shared view of the Cipherscale tenant.
	Tenant *tenant.Tenant
	// ResyncInterval is how often an object is compared with the tenant when nothing changed.
	ResyncInterval time.Duration
	// DefaultDeletionPolicy applies to CipherscaleUsers that set none.
	DefaultDeletionPolicy iamv1alpha1.DeletionPolicy
	// MaxConcurrentReconciles bounds the reconciles of each kind running at once.
	MaxConcurrentReconciles int
	// Clock is the controllers' clock; the real one when nil.
	Clock clock.PassiveClock
}

// Setup registers the field indexes and both controllers with the manager, sharing one tenant
// and one event recorder. main.go and the tests wire the operator through it alone.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if err := setupIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("setting up field indexes: %w", err)
	}
	recorder := mgr.GetEventRecorder("cipherscale-operator")
	if err := (&UserReconciler{
		Kube: mgr.GetClient(), Tenant: o.Tenant, Recorder: recorder, Clock: o.Clock,
		ResyncInterval:          o.ResyncInterval,
		DefaultDeletionPolicy:   o.DefaultDeletionPolicy,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CipherscaleUser controller: %w", err)
	}
	if err := (&MembershipReconciler{
		Kube: mgr.GetClient(), Tenant: o.Tenant, Recorder: recorder, Clock: o.Clock,
		ResyncInterval:          o.ResyncInterval,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the CipherscaleGroupMembership controller: %w", err)
	}
	return nil
}
