package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

func TestSetTenantRefs(t *testing.T) {
	type ref = iamv1alpha1.TenantRef
	cases := []struct {
		name              string
		live              cipherscale.User
		prevRoles         []ref
		wantRoles, wantGr []ref
	}{
		{name: "none is nil, so that status omits it", live: cipherscale.User{}},
		{
			name: "sorted by id, names as reported",
			live: cipherscale.User{
				Roles:  cipherscale.RoleList{{ID: "b2", Name: "Basic"}, {ID: "a1", Name: "Admin"}},
				Groups: []cipherscale.Group{{ID: "g1", Name: "Engineering"}},
			},
			wantRoles: []ref{{ID: "a1", Name: "Admin"}, {ID: "b2", Name: "Basic"}},
			wantGr:    []ref{{ID: "g1", Name: "Engineering"}},
		},
		{
			name:      "a name the last read lacks is kept from status; a role removed goes",
			live:      cipherscale.User{Roles: cipherscale.RoleList{{ID: "A1"}}},
			prevRoles: []ref{{ID: "a1", Name: "Admin"}, {ID: "c3", Name: "Gone"}},
			wantRoles: []ref{{ID: "A1", Name: "Admin"}},
		},
		{
			name:      "the tenant's rename wins",
			live:      cipherscale.User{Roles: cipherscale.RoleList{{ID: "a1", Name: "Administrators"}}},
			prevRoles: []ref{{ID: "a1", Name: "Admin"}},
			wantRoles: []ref{{ID: "a1", Name: "Administrators"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := iamv1alpha1.CipherscaleUserStatus{Roles: c.prevRoles}
			setTenantRefs(&st, &c.live)
			if d := cmp.Diff(c.wantRoles, st.Roles); d != "" {
				t.Errorf("roles (-want +got):\n%s", d)
			}
			if d := cmp.Diff(c.wantGr, st.Groups); d != "" {
				t.Errorf("groups (-want +got):\n%s", d)
			}
		})
	}
}
