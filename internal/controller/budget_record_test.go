package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// TestRemovalsByMinute: a budget's record goes to the status and comes back the same; entries
// without a unit are dropped.
func TestRemovalsByMinute(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	record := []tenant.SpentMinute{{Minute: at, Count: 3}, {Minute: at.Add(7 * time.Minute), Count: 1}}
	if diff := cmp.Diff(record, recordFromAPI(recordToAPI(record))); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if recordToAPI(nil) != nil {
		t.Fatal("an empty record is not nil: the field would be written as []")
	}
	got := recordFromAPI([]iamv1alpha1.RemovalMinute{{Minute: metav1.NewTime(at), Count: 0}, {Minute: metav1.NewTime(at), Count: 2}})
	if diff := cmp.Diff([]tenant.SpentMinute{{Minute: at, Count: 2}}, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// TestRemovalHoldRecord: the budget's trip, what waits, what an allowance released and the value
// granted go to status.removalHold and come back the same; the merge patch names every field,
// null when empty, so that a list emptied is not kept by the merge; nothing to record is no
// hold at all.
func TestRemovalHoldRecord(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	rec := tenant.BudgetRecord{
		Minutes:   []tenant.SpentMinute{{Minute: at, Count: 50}},
		TrippedAt: at.Add(time.Minute), TrippedPerHour: 50,
		Waiting:    []string{tenant.UserRemovalKey("evil", "u2"), "undeclared/x"},
		Released:   []string{tenant.UserRemovalKey("team-b", "u1")},
		AllowToken: "1@team-b",
	}
	st := &iamv1alpha1.TenantStatus{RemovalsByMinute: recordToAPI(rec.Minutes), RemovalHold: holdToAPI(rec)}
	if diff := cmp.Diff(rec, budgetRecordOf(st)); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if holdToAPI(tenant.BudgetRecord{Minutes: rec.Minutes}) != nil {
		t.Fatal("a record with nothing held gives a hold")
	}
	if holdPatch(tenant.BudgetRecord{}) != nil {
		t.Fatal("nothing held is not a null patch")
	}
	p, ok := holdPatch(tenant.BudgetRecord{AllowToken: "3"}).(map[string]any)
	if !ok || p["waiting"] != nil || p["released"] != nil || p["trippedAt"] != nil || p["allowRemovalsUsed"] != "3" {
		t.Fatalf("patch %#v", p)
	}
	for _, f := range []string{"trippedAt", "perHour", "waiting", "released", "allowRemovalsUsed"} {
		if _, ok := p[f]; !ok {
			t.Errorf("the patch does not name %s", f)
		}
	}
	// A status written before removalHold existed keeps its allow-removals value.
	old := &iamv1alpha1.TenantStatus{RemovalBudget: &iamv1alpha1.TenantRemovalBudgetStatus{AllowRemovalsUsed: "250"}}
	if got := budgetRecordOf(old).AllowToken; got != "250" {
		t.Fatalf("allow token %q, want 250", got)
	}
}
