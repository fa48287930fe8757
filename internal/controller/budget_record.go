package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// recordToAPI turns a budget's record into status.removalsByMinute.
func recordToAPI(record []tenant.SpentMinute) []iamv1alpha1.RemovalMinute {
	if len(record) == 0 {
		return nil
	}
	out := make([]iamv1alpha1.RemovalMinute, 0, len(record))
	for _, m := range record {
		out = append(out, iamv1alpha1.RemovalMinute{Minute: metav1.NewTime(m.Minute), Count: int32(m.Count)})
	}
	return out
}

// recordFromAPI reads status.removalsByMinute (or the default tenant's annotation) back.
func recordFromAPI(minutes []iamv1alpha1.RemovalMinute) []tenant.SpentMinute {
	out := make([]tenant.SpentMinute, 0, len(minutes))
	for _, m := range minutes {
		if m.Count > 0 {
			out = append(out, tenant.SpentMinute{Minute: m.Minute.UTC(), Count: int(m.Count)})
		}
	}
	return out
}

// holdToAPI turns what a budget records of its trip and allowances into status.removalHold;
// nil when there is nothing to record.
func holdToAPI(rec tenant.BudgetRecord) *iamv1alpha1.RemovalHold {
	if rec.TrippedAt.IsZero() && len(rec.Waiting) == 0 && len(rec.Released) == 0 && rec.AllowToken == "" {
		return nil
	}
	h := &iamv1alpha1.RemovalHold{Waiting: rec.Waiting, Released: rec.Released, AllowRemovalsUsed: rec.AllowToken}
	if !rec.TrippedAt.IsZero() {
		t := metav1.NewTime(rec.TrippedAt)
		h.TrippedAt, h.PerHour = &t, int32(rec.TrippedPerHour)
	}
	return h
}

// budgetRecordOf reads a tenant's status back into its budget's record. A status written
// before status.removalHold existed gives its allow-removals value from status.removalBudget.
func budgetRecordOf(st *iamv1alpha1.TenantStatus) tenant.BudgetRecord {
	rec := tenant.BudgetRecord{Minutes: recordFromAPI(st.RemovalsByMinute)}
	if h := st.RemovalHold; h != nil {
		if h.TrippedAt != nil {
			rec.TrippedAt, rec.TrippedPerHour = h.TrippedAt.Time, int(h.PerHour)
		}
		rec.Waiting, rec.Released, rec.AllowToken = h.Waiting, h.Released, h.AllowRemovalsUsed
	}
	if rec.AllowToken == "" && st.RemovalBudget != nil {
		rec.AllowToken = st.RemovalBudget.AllowRemovalsUsed
	}
	return rec
}

// holdPatch is the merge patch of status.removalHold to rec: every field present, null when
// empty, so that a list emptied is not kept by the merge.
func holdPatch(rec tenant.BudgetRecord) any {
	h := holdToAPI(rec)
	if h == nil {
		return nil
	}
	orNil := func(empty bool, v any) any {
		if empty {
			return nil
		}
		return v
	}
	return map[string]any{
		"trippedAt":         orNil(h.TrippedAt == nil, h.TrippedAt),
		"perHour":           orNil(h.PerHour == 0, h.PerHour),
		"waiting":           orNil(len(h.Waiting) == 0, h.Waiting),
		"released":          orNil(len(h.Released) == 0, h.Released),
		"allowRemovalsUsed": orNil(h.AllowRemovalsUsed == "", h.AllowRemovalsUsed),
	}
}

// applyBudget sets the tenant's removal budget from its spec, and grants the allow-removals
// annotation once (limited to one namespace's removals by allow-removals-namespace): it
// releases the removals that wait at that moment, and nothing else. The grant is saved with the
// budget's record (status.removalHold) before any removal it released is made: that removal's
// own Commit saves it, if this one failed.
func (r *TenantReconciler) applyBudget(ctx context.Context, obj tenantObject, key tenant.Key) *tenant.RemovalBudget {
	budget := r.Tenants.Budget(key)
	perHour := r.perHourOf(obj)
	st := obj.GetTenantStatus()
	wasTripped, _ := budget.Tripped()
	budget.SetPerHour(perHour)
	if tripped, _ := budget.Tripped(); wasTripped && !tripped ||
		st.RemovalBudget != nil && perHour != int(st.RemovalBudget.PerHour) {
		wakeWaitingRemovals(ctx, budget, r.RemovalWake) // raised (or lowered): ask again now
	}
	ann := obj.GetAnnotations()
	value, ok := ann[iamv1alpha1.AnnotationAllowRemovals]
	if !ok {
		budget.Allow("", 0, "")
		r.commitBudget(ctx, budget)
		return budget
	}
	ns := ann[iamv1alpha1.AnnotationAllowRemovalsNamespace]
	token := value
	if ns != "" {
		token = value + "@" + ns
	}
	n, err := tenant.ParseAllowRemovals(value)
	if err == nil && ns != "" {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			err = fmt.Errorf("%s must name a namespace, not %q", iamv1alpha1.AnnotationAllowRemovalsNamespace, ns)
		}
	}
	if err != nil {
		if budget.AllowToken() != token {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, eventRemovalsAllowed, "Allow", "%s: ignored", capitalize(err.Error()))
		}
		return budget
	}
	waiting := budget.Waiting()
	if granted, released := budget.Allow(token, n, ns); granted {
		scope := ""
		if ns != "" {
			scope = " of namespace " + ns
		}
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, eventRemovalsAllowed, "Allow",
			"The %s annotation released %d of the %d removals waiting%s; the rest of its %d lapses: an allowance releases only the removals waiting when it is granted",
			iamv1alpha1.AnnotationAllowRemovals, released, waiting, scope, n)
		r.commitBudget(ctx, budget)
		wakeWaitingRemovals(ctx, budget, r.RemovalWake)
	}
	return budget
}

// commitBudget saves the budget's record now; a failure is retried by the next removal's own
// Commit (before its call) or the next pass.
func (r *TenantReconciler) commitBudget(ctx context.Context, budget *tenant.RemovalBudget) {
	if err := budget.Commit(ctx); err != nil {
		log.FromContext(ctx).Info("Could not save the removal budget's record; retrying", "error", err.Error())
	}
}

// perHourOf is the tenant's removal budget: its spec, else the CRD's default.
func (r *TenantReconciler) perHourOf(obj tenantObject) int {
	if rb := obj.Settings().RemovalBudget; rb != nil && rb.PerHour != nil {
		return int(*rb.PerHour)
	}
	return tenant.DefaultRemovalsPerHour
}

// restoreBudget sets the tenant's removal budget from its spec and, the first time this process
// sees the tenant, restores its record from the status (status.removalsByMinute and
// status.removalHold: the removals of the last hour, the trip, what waited, what an allowance
// released) and makes the budget save it there before each removal's call. The registry makes a
// tenant object's budget wait for this restore, so no removal is let through on a fresh hour,
// and no trip is forgotten.
func (r *TenantReconciler) restoreBudget(obj tenantObject, key tenant.Key) {
	budget := r.Tenants.Budget(key)
	budget.SetPerHour(r.perHourOf(obj))
	if budget.Restored() {
		return
	}
	if !r.ReadOnly {
		budget.SetSave(r.saveBudget(key))
	}
	budget.Restore(budgetRecordOf(obj.GetTenantStatus()))
}

// saveBudget writes a budget's record in status.removalsByMinute and status.removalHold of the
// tenant object of key, with a merge patch of those fields alone: the reconciler's own status
// patch never writes them (it leaves them as it read them), so neither writer undoes the other.
func (r *TenantReconciler) saveBudget(key tenant.Key) tenant.SaveFunc {
	return func(ctx context.Context, rec tenant.BudgetRecord) error {
		obj := r.newObject()
		obj.SetNamespace(key.Namespace)
		obj.SetName(key.Name)
		body, err := json.Marshal(map[string]any{"status": map[string]any{
			"removalsByMinute": recordToAPI(rec.Minutes),
			"removalHold":      holdPatch(rec),
		}})
		if err != nil {
			return err
		}
		if err := r.Kube.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body)); err != nil {
			return fmt.Errorf("writing the status of %s: %w", key, err)
		}
		return nil
	}
}

// maxWaitingNamespaces bounds status.removalBudget.waitingByNamespace.
const maxWaitingNamespaces = 20

// reportBudgetHold saves the budget's record, writes its figures in the status and, while the
// budget has tripped or removals wait, marks the tenant Stalled with RemovalBudgetExceeded,
// saying which namespaces wait and what a person can do (an event when it starts).
func (r *TenantReconciler) reportBudgetHold(ctx context.Context, obj tenantObject, budget *tenant.RemovalBudget) {
	r.commitBudget(ctx, budget)
	st, gen := obj.GetTenantStatus(), obj.GetGeneration()
	s := budget.Status()
	rb := &iamv1alpha1.TenantRemovalBudgetStatus{
		PerHour: int32(s.PerHour), Spent: int32(s.Spent), Waiting: int32(s.Waiting),
		Allowance: int32(s.Allowance), AllowRemovalsUsed: budget.AllowToken(),
		WaitingByNamespace: waitingByNamespace(s.WaitingByNamespace),
	}
	if !s.TrippedAt.IsZero() {
		t := metav1.NewTime(s.TrippedAt)
		rb.TrippedAt = &t
	}
	prev := st.RemovalBudget
	st.RemovalBudget = rb
	if s.TrippedAt.IsZero() && s.Waiting == 0 {
		return
	}
	msg := removalHoldMessage(s)
	// One event when removals start waiting, not one per pass.
	if prev == nil || prev.TrippedAt == nil && prev.Waiting == 0 {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, iamv1alpha1.ReasonRemovalBudgetExceeded, "Remove", "%s", msg)
	}
	set(&st.Conditions, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, gen, iamv1alpha1.ReasonRemovalBudgetExceeded, msg)
}

// waitingByNamespace lists the namespaces with the most waiting removals first.
func waitingByNamespace(by map[string]int) []iamv1alpha1.NamespaceRemovals {
	out := make([]iamv1alpha1.NamespaceRemovals, 0, len(by))
	for ns, n := range by {
		out = append(out, iamv1alpha1.NamespaceRemovals{Namespace: ns, Waiting: int32(n)})
	}
	slices.SortFunc(out, func(a, b iamv1alpha1.NamespaceRemovals) int {
		if a.Waiting != b.Waiting {
			return int(b.Waiting - a.Waiting)
		}
		return strings.Compare(a.Namespace, b.Namespace)
	})
	if len(out) > maxWaitingNamespaces {
		out = out[:maxWaitingNamespaces]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// removalHoldMessage is the tenant's Stalled message while its budget holds removals.
func removalHoldMessage(s tenant.RemovalBudgetStatus) string {
	var where []string
	for _, w := range waitingByNamespace(s.WaitingByNamespace) {
		where = append(where, fmt.Sprintf("%s %d", w.Namespace, w.Waiting))
	}
	undeclared := s.Waiting
	for _, n := range s.WaitingByNamespace {
		undeclared -= n
	}
	if undeclared > 0 {
		where = append(where, fmt.Sprintf("undeclared users %d", undeclared))
	}
	detail := ""
	if len(where) > 0 {
		detail = " (" + strings.Join(where, ", ") + ")"
	}
	return fmt.Sprintf("%d removals wait for the removal budget of %d per hour%s, which tripped: the tenant's removals stop until a person acts, whatever time passes. If they are intended, annotate the tenant %s: \"<n>\" (with %s: \"<namespace>\" to release one namespace's only) or raise spec.removalBudget.perHour; if not, restore the objects",
		s.Waiting, s.PerHour, detail, iamv1alpha1.AnnotationAllowRemovals, iamv1alpha1.AnnotationAllowRemovalsNamespace)
}
