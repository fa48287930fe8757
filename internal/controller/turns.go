package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// No worker waits on a tenant. A reconcile of a tenant's objects takes one of the tenant's
// passes first (tenant.Enter): a slow tenant holds at most its share of the workers, and a
// reconcile that finds them taken gives its worker back, to be woken when one frees. Its calls
// carry the object's UID as their turn key (cipherscale.WithTurn): a call that would wait for
// the tenant's rate limit reserves its turn and the object is requeued for it (classify), and a
// call during a 429 pause fails at once, the object requeued after the pause.

// passBackstop requeues an object that waits for a pass of its tenant, should its wake be lost.
const passBackstop = 30 * time.Second

// enterTenant takes a pass of t for the object and returns the ctx its calls use, or false when
// the tenant's passes are all taken (wake is called when one frees). t may be nil (no tenant
// resolved): nothing to enter.
// A pass whose object waits for its turn of the rate limit is held (verdict.turn), so that the
// turns a tenant reserves ahead stay bounded by its passes.
func enterTenant(ctx context.Context, t *tenant.Tenant, uid types.UID, wake func()) (context.Context, *tenant.Pass, bool) {
	ctx = cipherscale.WithTurn(cipherscale.WithoutPauseWait(ctx), string(uid))
	if t == nil {
		return ctx, nil, true
	}
	pass, ok := t.Enter(string(uid), wake)
	return ctx, pass, ok
}

// turnResult turns a reconcile that ended on a call waiting for its turn, returned as an error
// rather than through fail, into a requeue for that turn, its pass held.
func turnResult(res *ctrl.Result, err *error, pass *tenant.Pass) {
	if *err == nil || !cipherscale.IsTurn(*err) {
		return
	}
	wait := cipherscale.RetryAfterOf(*err)
	pass.Hold(wait)
	*res, *err = ctrl.Result{RequeueAfter: wait}, nil
}
