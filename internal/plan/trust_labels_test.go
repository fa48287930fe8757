package plan

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// TestUnknownLabelsSelectNothing: a namespace whose labels could not be read is selected by no
// selector but the empty one, NotIn and DoesNotExist included (a failed read never widens trust).
func TestUnknownLabelsSelectNothing(t *testing.T) {
	known := map[string]map[string]string{
		"team-a": {"kubernetes.io/metadata.name": "team-a", "env": "dev"},
	}
	labelsOf := func(ns string) map[string]string { return known[ns] } // nil: the read failed
	sel := func(exprs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: exprs}
	}
	for _, tc := range []struct {
		what     string
		selector *metav1.LabelSelector
		teamA    bool
	}{
		{"NotIn", sel(metav1.LabelSelectorRequirement{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"prod"}}), true},
		{"DoesNotExist", sel(metav1.LabelSelectorRequirement{Key: "untrusted", Operator: metav1.LabelSelectorOpDoesNotExist}), true},
		{"In", sel(metav1.LabelSelectorRequirement{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"dev"}}), true},
		{"matchLabels", &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}, true},
	} {
		spec := &iamv1alpha1.AdoptionSpec{NamespaceSelector: tc.selector}
		priv := &iamv1alpha1.PrivilegedSpec{NamespaceSelector: tc.selector}
		p := TenantTrust(iamv1alpha1.KindClusterCipherscaleTenant, "", spec, priv, labelsOf)
		if got := p.Adoption.Allows("team-a"); got != tc.teamA {
			t.Errorf("%s: adoption from team-a (labels known) = %v, want %v", tc.what, got, tc.teamA)
		}
		if p.Adoption.Allows("unreadable") || p.Privileged.Allows("unreadable") {
			t.Errorf("%s: a namespace whose labels could not be read is selected", tc.what)
		}
	}
	// The empty selector selects every namespace without reading any.
	p := TenantTrust(iamv1alpha1.KindClusterCipherscaleTenant, "", &iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{}}, nil, labelsOf)
	if !p.Adoption.Allows("unreadable") {
		t.Error("{} must select every namespace")
	}
}
