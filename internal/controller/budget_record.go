package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// recordFromAPI reads status.removalsByMinute back.
func recordFromAPI(minutes []iamv1alpha1.RemovalMinute) []tenant.SpentMinute {
	out := make([]tenant.SpentMinute, 0, len(minutes))
	for _, m := range minutes {
		if m.Count > 0 {
			out = append(out, tenant.SpentMinute{Minute: m.Minute.UTC(), Count: int(m.Count)})
		}
	}
	return out
}
