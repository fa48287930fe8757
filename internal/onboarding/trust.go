package onboarding

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// DefaultTrustNote is what plan says when it has no tenant object to read the trust rules from
// (--api-url): it assumes the tenant's default, the safe one.
const DefaultTrustNote = "No tenant object (--api-url): the plan assumes the tenant's default trust: no namespace may adopt existing users, " +
	"grant privileged roles, manage privileged groups or have Authoritative memberships. " +
	"Use --tenant KIND/NAME to plan with the tenant object's spec.adoption and spec.privileged."

// TenantTrust is what a tenant object allows (plan.TenantTrust of its spec.adoption and
// spec.privileged, with the namespaces' labels), and which namespaces may use it.
type TenantTrust struct {
	Trust plan.TrustPolicy
	// Usable reports whether objects of a namespace may use the tenant: for a
	// ClusterCipherscaleTenant, its namespaceSelector; nil for a CipherscaleTenant (its
	// objects are those of its own namespace).
	Usable func(namespace string) bool
	// Note, when set, says what the plugin could not read and assumed instead.
	Note string
}

// trustOf reads the trust rules of the tenant object u (as ReadTenant got it). Namespace labels
// are read from the cluster; when they may not be listed, a selector that needs them selects
// nothing (the safe reading), and Note says so.
func (c *Cluster) trustOf(ctx context.Context, ref TenantRef, namespace string, u *unstructured.Unstructured) (TenantTrust, error) {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	var labelsOf func(string) map[string]string
	var note string
	var nsList corev1.NamespaceList
	switch err := c.Client.List(ctx, &nsList); {
	case apierrors.IsForbidden(err):
		note = "Not allowed to list namespaces: namespace selectors with labels are taken to select no namespace"
	case err != nil:
		return TenantTrust{}, fmt.Errorf("listing namespaces for the trust rules of %s %s: %w", ref.Kind, ref.Name, err)
	default:
		byName := map[string]map[string]string{}
		for _, ns := range nsList.Items {
			l := ns.Labels
			if l == nil {
				l = map[string]string{}
			}
			byName[ns.Name] = l
		}
		labelsOf = func(ns string) map[string]string { return byName[ns] }
	}
	var t TenantTrust
	if ref.Kind == KindClusterTenant {
		var s iamv1alpha1.ClusterCipherscaleTenantSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &s); err != nil {
			return t, fmt.Errorf("reading the spec of %s %s: %w", ref.Kind, ref.Name, err)
		}
		t.Trust = plan.TenantTrust(iamv1alpha1.KindClusterCipherscaleTenant, "", s.Adoption, s.Privileged, labelsOf)
		t.Usable = plan.SelectorRule(s.NamespaceSelector, labelsOf).Allows
	} else {
		var s iamv1alpha1.CipherscaleTenantSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &s); err != nil {
			return t, fmt.Errorf("reading the spec of %s %s: %w", ref.Kind, ref.Name, err)
		}
		t.Trust = plan.TenantTrust(iamv1alpha1.KindCipherscaleTenant, namespace, nil, s.Privileged, labelsOf)
	}
	t.Note = note
	return t, nil
}

// groupRoles reads, for each group that may need it, what a member inherits through their
// groups (GET /tenants/users/{id}/roles?groupsOnly=true), as the operator does to tell whether
// a group is privileged: the members with the fewest groups first, up to 3 reads, the first
// answer kept. A group no member of which could be read is left out: plan counts it
// privileged, as the operator does.
func groupRoles(ctx context.Context, api *cipherscale.Client, tenant []cipherscale.User, groups []string) (map[string][][]cipherscale.Role, error) {
	members := map[string][]cipherscale.User{}
	for _, u := range tenant {
		for _, g := range u.Groups {
			id := plan.NormalizeID(g.ID)
			members[id] = append(members[id], u)
		}
	}
	out := map[string][][]cipherscale.Role{}
	for _, g := range plan.SortedSet(groups) {
		ms := members[g]
		sort.Slice(ms, func(i, j int) bool {
			if len(ms[i].Groups) != len(ms[j].Groups) {
				return len(ms[i].Groups) < len(ms[j].Groups)
			}
			return ms[i].ID < ms[j].ID
		})
		for _, m := range ms[:min(len(ms), 3)] {
			roles, err := api.UserRoles(ctx, m.ID, cipherscale.GroupRolesOnly)
			if cipherscale.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading the roles user %s inherits through groups: %w", m.ID, err)
			}
			out[g] = [][]cipherscale.Role{roles}
			break
		}
	}
	return out, nil
}

// groupsNamed returns the groups whose privilege a plan may ask about: those the objects name
// and those the tenant users they name are in.
func groupsNamed(users []*iamv1alpha1.CipherscaleUser, memberships []*iamv1alpha1.CipherscaleGroupMembership, tenant []cipherscale.User) []string {
	var out []string
	emails := map[string]bool{}
	for _, u := range users {
		emails[cipherscale.NormalizeEmail(u.Spec.Email)] = true
		if u.Spec.Groups != nil {
			out = append(out, *u.Spec.Groups...)
		}
	}
	for _, m := range memberships {
		out = append(out, m.Spec.GroupID)
		for _, mem := range m.Spec.Members {
			if mem.UserRef == nil {
				emails[cipherscale.NormalizeEmail(mem.Email)] = true
			}
		}
	}
	for _, u := range tenant {
		if emails[cipherscale.NormalizeEmail(u.Email)] {
			for _, g := range u.Groups {
				out = append(out, g.ID)
			}
		}
	}
	return plan.SortedSet(out)
}
