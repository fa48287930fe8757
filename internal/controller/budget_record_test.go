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
