package controller

// How a tenant object's pass reads its tenant: its own read while the key must be shown to work,
// the snapshot its objects share after; and what a failed read says, remembered per key so that a
// refused key is not sent again until it changes.

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// keyRead is a tenant's configuration and key version, and when the API refused them (in
// refused) or read the tenant with them (in verified).
type keyRead struct {
	config  tenant.Config
	version uint64
	at      time.Time
}

// keyReads remembers a keyRead per tenant; the reconciler's mu guards it.
type keyReads map[tenant.Key]keyRead

// put remembers that the tenant's read used this connection and key version at.
func (k *keyReads) put(key tenant.Key, cfg tenant.Config, version uint64, at time.Time) {
	if *k == nil {
		*k = keyReads{}
	}
	(*k)[key] = keyRead{config: cfg, version: version, at: at}
}

// same reports whether the tenant's remembered read used this connection (its intervals aside)
// and key version.
func (k keyReads) same(key tenant.Key, cfg tenant.Config, version uint64) (keyRead, bool) {
	v, ok := k[key]
	return v, ok && tenant.SameConnection(v.config, cfg) && v.version == version
}

// readUsers reads the tenant's users for this pass. A tenant that is Ready, whose connection
// (URL, rate, Secret) and key were checked by this process's last read, shares the snapshot its
// objects read (read again when it is older than the resync interval, once for all; made for
// them when objects name the tenant and none has read it yet): an idle tenant costs one read per
// interval, not one for the objects and one for the tenant, and a change of its policies or
// intervals costs no read of its own. Any other pass must show that the key works, and reads the
// tenant itself.
func (r *TenantReconciler) readUsers(ctx context.Context, obj tenantObject, key tenant.Key, t *tenant.Tenant, cfg tenant.Config, version uint64) ([]cipherscale.User, metav1.Time, error) {
	logger := log.FromContext(ctx)
	st := obj.GetTenantStatus()
	now := r.Clock.Now()
	if isReady(st.Conditions) && r.verifiedWith(key, cfg, version) {
		list, at, ok, err := t.SharedUsers(ctx, now.Add(-cfg.ResyncInterval), st.References > 0)
		if ok {
			logger.V(1).Info("Reading the tenant's users from the shared snapshot", "readAt", at)
			return list, metav1.NewTime(at), err
		}
	}
	logger.V(1).Info("Reading the tenant's users")
	list, err := t.API().ListUsers(ctx)
	if err == nil {
		r.verify(key, cfg, version)
	}
	return list, metav1.NewTime(now), err
}

// failRead sets the status after a failed read of the tenant's users.
func (r *TenantReconciler) failRead(ctx context.Context, obj tenantObject, key tenant.Key, version uint64, cfg tenant.Config, err error) (ctrl.Result, error) {
	conds := &obj.GetTenantStatus().Conditions
	gen := obj.GetGeneration()
	switch {
	case cipherscale.IsUnauthorized(err):
		r.rememberRefusal(key, cfg, version)
		r.stall(obj, iamv1alpha1.ReasonUnauthorized,
			fmt.Sprintf("The Cipherscale API refused the API key in %s: put a valid key there", cfg.Secret))
		return ctrl.Result{RequeueAfter: r.RecheckInterval}, nil
	case cipherscale.IsNotFound(err):
		// A person must fix spec.url. What answered is not described (D3): the log has it.
		log.FromContext(ctx).V(1).Info("The tenant's list of users failed", "tenant", key.String(), "error", err.Error())
		r.stall(obj, iamv1alpha1.ReasonInvalidURL,
			fmt.Sprintf("The API at %s answered the list of users with an unexpected status: spec.url is not the base URL of a Cipherscale API", hostOf(cfg.URL)))
		return ctrl.Result{RequeueAfter: cfg.ResyncInterval}, nil
	}
	v := classify(err)
	if cipherscale.IsTransport(err) {
		v.message = fmt.Sprintf("The API at %s could not be reached; retrying", hostOf(cfg.URL))
	}
	switch {
	case v.stalled:
		r.stall(obj, v.reason, v.message)
		return ctrl.Result{RequeueAfter: cfg.ResyncInterval}, nil
	case v.requeueAfter > 0:
		markReconciling(conds, gen, v.reason, v.message)
		return ctrl.Result{RequeueAfter: v.requeueAfter}, nil
	default:
		markReconciling(conds, gen, v.reason, v.message)
		return ctrl.Result{}, err
	}
}

func (r *TenantReconciler) rememberRefusal(key tenant.Key, cfg tenant.Config, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused.put(key, cfg, version, r.Clock.Now())
}

// stillRefused reports whether the API refused this very key, with this very configuration,
// less than a resync interval ago.
func (r *TenantReconciler) stillRefused(key tenant.Key, cfg tenant.Config, version uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rk, ok := r.refused.same(key, cfg, version)
	return ok && r.Clock.Since(rk.at) < cfg.ResyncInterval
}

func (r *TenantReconciler) forgetRefusal(key tenant.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.refused, key)
}

// forgetKey forgets what was learnt of a tenant's key: the tenant left the registry.
func (r *TenantReconciler) forgetKey(key tenant.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.refused, key)
	delete(r.verified, key)
}

// verify records that the tenant was read with this configuration and key version.
func (r *TenantReconciler) verify(key tenant.Key, cfg tenant.Config, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verified.put(key, cfg, version, r.Clock.Now())
}

// verifiedWith reports whether the tenant's last read by this reconciler used this
// configuration and key version.
func (r *TenantReconciler) verifiedWith(key tenant.Key, cfg tenant.Config, version uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.verified.same(key, cfg, version)
	return ok
}
