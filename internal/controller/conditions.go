package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// markReady says the tenant matches the spec: Ready True, no Reconciling, no Stalled.
func markReady(conds *[]metav1.Condition, gen int64, reason, msg string) {
	set(conds, iamv1alpha1.ConditionReady, metav1.ConditionTrue, gen, reason, msg)
	meta.RemoveStatusCondition(conds, iamv1alpha1.ConditionReconciling)
	meta.RemoveStatusCondition(conds, iamv1alpha1.ConditionStalled)
}

// markReconciling says changes are under way or will be retried: Ready False, Reconciling True.
func markReconciling(conds *[]metav1.Condition, gen int64, reason, msg string) {
	set(conds, iamv1alpha1.ConditionReady, metav1.ConditionFalse, gen, reason, msg)
	set(conds, iamv1alpha1.ConditionReconciling, metav1.ConditionTrue, gen, reason, msg)
	meta.RemoveStatusCondition(conds, iamv1alpha1.ConditionStalled)
}

// markStalled says a person must act: Ready False, Stalled True, no Reconciling.
func markStalled(conds *[]metav1.Condition, gen int64, reason, msg string) {
	set(conds, iamv1alpha1.ConditionReady, metav1.ConditionFalse, gen, reason, msg)
	set(conds, iamv1alpha1.ConditionStalled, metav1.ConditionTrue, gen, reason, msg)
	meta.RemoveStatusCondition(conds, iamv1alpha1.ConditionReconciling)
}

// markNotReady says the tenant differs from the spec and nothing is being done about it (a
// paused object): Ready False, neither Reconciling nor Stalled.
func markNotReady(conds *[]metav1.Condition, gen int64, reason, msg string) {
	set(conds, iamv1alpha1.ConditionReady, metav1.ConditionFalse, gen, reason, msg)
	meta.RemoveStatusCondition(conds, iamv1alpha1.ConditionReconciling)
	meta.RemoveStatusCondition(conds, iamv1alpha1.ConditionStalled)
}

func set(conds *[]metav1.Condition, typ string, status metav1.ConditionStatus, gen int64, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, ObservedGeneration: gen, Reason: reason, Message: msg,
	})
}

// busyReason reports whether a Ready reason says only that the tenant is busy or unreachable
// (429s, 5xx, timeouts): not the object's fault, nothing a person must fix, so no Warning event
// (tenants.md: busy is not broken). The condition says it; the object is retried with backoff.
func busyReason(reason string) bool { return reason == iamv1alpha1.ReasonAPIUnavailable }

// readyReason returns the reason of the Ready condition, "" when there is none.
func readyReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, iamv1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// isReady reports whether Ready is True.
func isReady(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, iamv1alpha1.ConditionReady)
}
