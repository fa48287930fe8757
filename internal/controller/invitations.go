package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// DefaultMaxInvitationsPerDay is the cap of a tenant object whose spec sets none (the CRD's
// default of spec.invitations.maxPerDay).
const DefaultMaxInvitationsPerDay = 5

// maxSentTimes bounds status.invitation.sentTimes (the CRD's maxItems).
const maxSentTimes = 100

// invitationRestoreRetry is how soon a send that waits for the tenant's record asks again.
const invitationRestoreRetry = time.Second

// invitationCommitTimeout bounds the save of the invitation record a queued create waits for.
const invitationCommitTimeout = time.Minute

// invitationLimit is the cap of the object's tenant: its spec.invitations.maxPerDay.
func (s *userScope) invitationLimit() int {
	return s.tenant.Invitations().Limit()
}

// keptSends is how many send times status.invitation.sentTimes keeps: enough to apply the cap.
func (s *userScope) keptSends() int {
	if l := s.invitationLimit(); l > 0 && l <= maxSentTimes {
		return l
	}
	return maxSentTimes
}

// reserveInvitation asks the tenant's invitation log for one invitation to the object's email,
// counting every send to that address in the last 24 hours whichever object asked for it, and
// the object's own record of its sends. Under the cap, the send is recorded in memory, and must
// be saved in the tenant's status before it is made (commitInvitation); Cancel it when it was
// certainly not made. Over it, OK is false and Until says when the oldest send leaves the window.
func (s *userScope) reserveInvitation(obj *iamv1alpha1.CipherscaleUser) (tenant.InvitationReservation, error) {
	var also []time.Time
	if st := obj.Status.Invitation; st != nil {
		for _, t := range st.SentTimes {
			also = append(also, t.Time)
		}
	}
	return s.tenant.Invitations().Reserve(obj.Spec.Email, also)
}

// commitInvitation saves the tenant's invitation record with the send reserved at at, before
// the send is made; a failed save cancels the reservation: nothing is sent.
func commitInvitation(ctx context.Context, l *tenant.InvitationLog, email string, at time.Time) error {
	if err := l.Commit(ctx); err != nil {
		l.Cancel(email, at)
		return fmt.Errorf("recording the invitation in the tenant's status before sending it: %w", err)
	}
	return nil
}

// cancelInvitation forgets a send reserved at at that was certainly not made.
func (s *userScope) cancelInvitation(obj *iamv1alpha1.CipherscaleUser, at time.Time) {
	s.tenant.Invitations().Cancel(obj.Spec.Email, at)
}

// sentTimes is status.invitation.sentTimes: the sends to the object's email in the last 24
// hours, as the tenant's log counts them.
func (s *userScope) sentTimes(obj *iamv1alpha1.CipherscaleUser) []metav1.Time {
	sends := s.tenant.Invitations().Sends(obj.Spec.Email, s.keptSends())
	out := make([]metav1.Time, 0, len(sends))
	for _, t := range sends {
		out = append(out, metav1.NewTime(t))
	}
	return out
}

// invitationNotSent reports whether a create or resend answered with this error certainly sent
// no invitation: the API refused it (a 4xx; a 409 is a user that exists, or is not pending).
func invitationNotSent(err error) bool {
	st := cipherscale.StatusOf(err)
	return st >= 400 && st < 500
}

// invitationCapMessage says why an invitation waits.
func invitationCapMessage(res tenant.InvitationReservation, limit int) string {
	return fmt.Sprintf("%d invitations were sent to this email in the last 24 hours, by this object or others before it, the most the tenant allows (spec.invitations.maxPerDay %d); the next may be sent at %s",
		res.Count, limit, res.Until.UTC().Format(time.RFC3339))
}

// deferCreate ends a pass whose create would send one invitation too many: the object waits,
// Reconciling with reason InvitationDeferred (a warning event once), until the oldest send
// leaves the window.
func (s *userScope) deferCreate(obj *iamv1alpha1.CipherscaleUser, res tenant.InvitationReservation) ctrl.Result {
	msg := "Not creating the tenant user yet (a create sends an invitation): " + invitationCapMessage(res, s.invitationLimit())
	s.warnOnChange(iamv1alpha1.EventInvitationDeferred, msg)
	markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.EventInvitationDeferred, msg)
	return ctrl.Result{RequeueAfter: max(res.Until.Sub(s.Clock.Now()), time.Second)}
}

// invitationsNotRestored ends a pass whose send waits for the tenant's record of the last 24 hours.
func (s *userScope) invitationsNotRestored(obj *iamv1alpha1.CipherscaleUser) ctrl.Result {
	markReconciling(&obj.Status.Conditions, obj.Generation, iamv1alpha1.ReasonProgressing,
		"The operator is restoring the tenant's record of the invitations sent in the last 24 hours after its start; retrying shortly")
	return ctrl.Result{RequeueAfter: invitationRestoreRetry}
}

// maxPerDayOf is the tenant's invitation cap: its spec, else the CRD's default.
func maxPerDayOf(obj tenantObject) int {
	if inv := obj.Settings().Invitations; inv != nil && inv.MaxPerDay != nil {
		return int(*inv.MaxPerDay)
	}
	return DefaultMaxInvitationsPerDay
}

// restoreInvitations sets the tenant's invitation cap from its spec and, the first time this
// process sees the tenant, restores the sends of the last 24 hours from
// status.invitationsSent, and makes the log save them there before each send. The registry makes
// a tenant object's log wait for this restore, so that no invitation is sent on a fresh day.
func (r *TenantReconciler) restoreInvitations(obj tenantObject, key tenant.Key) {
	l := r.Tenants.Invitations(key)
	l.SetLimit(maxPerDayOf(obj))
	l.SetSave(r.saveInvitations(key))
	if l.Restored() {
		return
	}
	var rec []tenant.InvitationSends
	for _, s := range obj.GetTenantStatus().InvitationsSent {
		times := make([]time.Time, 0, len(s.SentTimes))
		for _, t := range s.SentTimes {
			times = append(times, t.Time)
		}
		rec = append(rec, tenant.InvitationSends{Email: s.Email, Times: times})
	}
	l.Restore(rec)
}

// saveInvitations writes an invitation log's record in status.invitationsSent of the tenant
// object of key, with a merge patch of that field alone.
func (r *TenantReconciler) saveInvitations(key tenant.Key) tenant.InvitationSaveFunc {
	return func(ctx context.Context, record []tenant.InvitationSends) error {
		var list []iamv1alpha1.InvitationRecord
		for _, s := range record {
			times := make([]metav1.Time, 0, len(s.Times))
			for _, t := range s.Times {
				times = append(times, metav1.NewTime(t))
			}
			list = append(list, iamv1alpha1.InvitationRecord{Email: s.Email, SentTimes: times})
		}
		body, err := json.Marshal(map[string]any{"status": map[string]any{"invitationsSent": list}})
		if err != nil {
			return err
		}
		obj := r.newObject()
		obj.SetNamespace(key.Namespace)
		obj.SetName(key.Name)
		if err := r.Kube.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body)); err != nil {
			return fmt.Errorf("writing the status of %s: %w", key, err)
		}
		return nil
	}
}

// invitationDeferredEvent is the warning of a resend that waits for the cap.
func (s *userScope) invitationDeferredEvent(obj *iamv1alpha1.CipherscaleUser, id string, res tenant.InvitationReservation) {
	s.event(corev1.EventTypeWarning, iamv1alpha1.EventInvitationDeferred, "ResendInvitation",
		"Deferred the invitation of tenant user %s: %s", id, invitationCapMessage(res, s.invitationLimit()))
}
