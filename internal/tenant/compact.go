package tenant

import "github.com/cipherscale/cipherscale-operator/internal/cipherscale"

// The snapshot holds each user compactly: what the plans and the trust rules read (id, email,
// profile, status, owner flag, timestamps, the ids, names and types of its direct roles and of
// its groups), with the strings that many users share (role and group ids and names, statuses)
// held once. Devices, descriptions and the timestamps of roles and groups are never kept: at
// 100,000 users they are most of what the API sends.

// compactLocked returns the snapshot's copy of u; mu is held (for the interned strings).
func (t *Tenant) compactLocked(u *cipherscale.User) *cipherscale.User {
	c := *u
	c.Devices, c.LastConnection = nil, nil
	c.Status = cipherscale.Status(t.intern(string(u.Status)))
	if len(u.Roles) > 0 {
		c.Roles = make(cipherscale.RoleList, len(u.Roles))
		for i, r := range u.Roles {
			c.Roles[i] = cipherscale.Role{ID: t.intern(r.ID), Name: t.intern(r.Name),
				Type: cipherscale.RoleType(t.intern(string(r.Type))), Deleteable: r.Deleteable}
		}
	} else if u.Roles != nil {
		c.Roles = cipherscale.RoleList{}
	}
	if len(u.Groups) > 0 {
		c.Groups = make([]cipherscale.Group, len(u.Groups))
		for i, g := range u.Groups {
			c.Groups[i] = cipherscale.Group{ID: t.intern(g.ID), Name: t.intern(g.Name)}
		}
	} else if u.Groups != nil {
		c.Groups = []cipherscale.Group{}
	}
	return &c
}

// intern returns the snapshot's copy of s, so that a string many users share is held once. The
// table holds only role and group ids and names and statuses: it grows with the tenant's roles
// and groups, not with its users.
func (t *Tenant) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := t.strs[s]; ok {
		return v
	}
	if t.strs == nil {
		t.strs = map[string]string{}
	}
	t.strs[s] = s
	return s
}
