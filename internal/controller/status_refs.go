package controller

import (
	"slices"
	"strings"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// setTenantRefs records in status the user's direct roles and groups as the tenant reports them,
// id and name only, sorted by id so that an unchanged user writes no status. A name the last
// read did not carry (a role or group added a moment ago, not yet seen on any user) keeps the
// name status already had, and is filled by the next read of the tenant.
func setTenantRefs(st *iamv1alpha1.CipherscaleUserStatus, live *cipherscale.User) {
	roles := make([]iamv1alpha1.TenantRef, 0, len(live.Roles))
	for _, r := range live.Roles {
		roles = append(roles, iamv1alpha1.TenantRef{ID: r.ID, Name: r.Name})
	}
	groups := make([]iamv1alpha1.TenantRef, 0, len(live.Groups))
	for _, g := range live.Groups {
		groups = append(groups, iamv1alpha1.TenantRef{ID: g.ID, Name: g.Name})
	}
	st.Roles = mergeRefs(roles, st.Roles)
	st.Groups = mergeRefs(groups, st.Groups)
}

// mergeRefs sorts refs by id, fills an empty name from prev, and returns nil for none.
func mergeRefs(refs, prev []iamv1alpha1.TenantRef) []iamv1alpha1.TenantRef {
	if len(refs) == 0 {
		return nil
	}
	known := make(map[string]string, len(prev))
	for _, p := range prev {
		known[cipherscale.NormalizeID(p.ID)] = p.Name
	}
	for i := range refs {
		if refs[i].Name == "" {
			refs[i].Name = known[cipherscale.NormalizeID(refs[i].ID)]
		}
	}
	slices.SortFunc(refs, func(a, b iamv1alpha1.TenantRef) int {
		return strings.Compare(cipherscale.NormalizeID(a.ID), cipherscale.NormalizeID(b.ID))
	})
	return refs
}
