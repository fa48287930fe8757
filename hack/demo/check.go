package main

import (
	"fmt"
	"sort"
	"strings"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// tenantCheck is the outcome of comparing the tenant with the applied objects.
type tenantCheck struct {
	// Users and Memberships are the objects compared.
	Users, Memberships int
	// Problems lists each difference found; none means the tenant matches.
	Problems []string
}

func (c tenantCheck) String() string {
	return fmt.Sprintf("checked %d CipherscaleUsers and %d CipherscaleGroupMemberships against the tenant: %d differences",
		c.Users, c.Memberships, len(c.Problems))
}

// checkTenant compares the tenant, as the simulator's /_sim/users shows it, with the objects
// applied from config/samples, the way a person would in the Cipherscale console: each
// CipherscaleUser's email is held by exactly one user, the one status.id names, invited once,
// with the declared direct roles, profile, active state and groups (its spec.groups and the
// memberships that name it; no other group when spec.groups is set); each membership's email
// members are in its group; an Authoritative group holds no member nothing declares.
func checkTenant(users []iamv1alpha1.CipherscaleUser, memberships []iamv1alpha1.CipherscaleGroupMembership, tenant []simulator.UserRecord) tenantCheck {
	c := tenantCheck{Users: len(users), Memberships: len(memberships)}
	problem := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }

	byEmail := map[string][]simulator.UserRecord{}
	for _, r := range tenant {
		e := cipherscale.NormalizeEmail(r.User.Email)
		byEmail[e] = append(byEmail[e], r)
	}
	// declaredGroups: per email, the groups something declares for it.
	declaredGroups := map[string]map[string]bool{}
	declare := func(email, group string) {
		e := cipherscale.NormalizeEmail(email)
		if declaredGroups[e] == nil {
			declaredGroups[e] = map[string]bool{}
		}
		declaredGroups[e][cipherscale.NormalizeID(group)] = true
	}
	emailOf := map[string]string{} // CipherscaleUser name -> email
	for _, u := range users {
		emailOf[u.Namespace+"/"+u.Name] = u.Spec.Email
		if u.Spec.Groups != nil {
			for _, g := range *u.Spec.Groups {
				declare(u.Spec.Email, g)
			}
		}
	}
	for _, m := range memberships {
		for _, mem := range m.Spec.Members {
			switch {
			case mem.UserRef != nil:
				if e, ok := emailOf[m.Namespace+"/"+mem.UserRef.Name]; ok {
					declare(e, m.Spec.GroupID)
				}
			default:
				declare(mem.Email, m.Spec.GroupID)
			}
		}
	}

	for _, u := range users {
		recs := byEmail[cipherscale.NormalizeEmail(u.Spec.Email)]
		if len(recs) != 1 {
			problem("%s: %d tenant users have its email, want 1", u.Name, len(recs))
			continue
		}
		r := recs[0]
		live := r.User
		if live.ID != u.Status.ID {
			problem("%s: status.id %q, but the tenant user is %s", u.Name, u.Status.ID, live.ID)
		}
		if r.InvitationsSent != 1 {
			problem("%s: %d invitations sent, want 1", u.Name, r.InvitationsSent)
		}
		if u.Spec.Roles != nil && !sameSet(live.RoleIDs(), *u.Spec.Roles) {
			problem("%s: direct roles %v, want %v", u.Name, sorted(live.RoleIDs()), sorted(*u.Spec.Roles))
		}
		for field, want := range map[string]*string{"firstName": u.Spec.FirstName, "lastName": u.Spec.LastName, "image": u.Spec.Image} {
			got := map[string]string{"firstName": live.FirstName, "lastName": live.LastName, "image": live.Image}[field]
			if want != nil && *want != got {
				problem("%s: %s %q, want %q", u.Name, field, got, *want)
			}
		}
		inactive := live.Status.Normalized() == cipherscale.StatusInactive
		if active := u.Spec.Active == nil || *u.Spec.Active; active == inactive {
			problem("%s: status %s, want active %t", u.Name, live.Status, active)
		}
		want := declaredGroups[cipherscale.NormalizeEmail(u.Spec.Email)]
		have := idSet(live.GroupIDs())
		for g := range want {
			if !have[g] {
				problem("%s: not in group %s, which is declared for it", u.Name, g)
			}
		}
		if u.Spec.Groups != nil {
			for g := range have {
				if !want[g] {
					problem("%s: in group %s, which nothing declares (spec.groups is set)", u.Name, g)
				}
			}
		}
	}

	for _, m := range memberships {
		gid := cipherscale.NormalizeID(m.Spec.GroupID)
		for _, mem := range m.Spec.Members {
			if mem.Email == "" {
				continue
			}
			recs := byEmail[cipherscale.NormalizeEmail(mem.Email)]
			if len(recs) != 1 || !idSet(recs[0].User.GroupIDs())[gid] {
				problem("%s: member %s is not in group %s", m.Name, mem.Email, gid)
			}
		}
		if m.Spec.Policy != iamv1alpha1.MembershipPolicyAuthoritative {
			continue
		}
		for _, r := range tenant {
			if idSet(r.User.GroupIDs())[gid] && !declaredGroups[cipherscale.NormalizeEmail(r.User.Email)][gid] {
				problem("%s: %s is in the Authoritative group %s, but nothing declares it", m.Name, r.User.Email, gid)
			}
		}
	}
	sort.Strings(c.Problems)
	return c
}

func idSet(ids []string) map[string]bool {
	s := make(map[string]bool, len(ids))
	for _, id := range ids {
		s[cipherscale.NormalizeID(id)] = true
	}
	return s
}

func sameSet(a, b []string) bool {
	return strings.Join(sorted(a), ",") == strings.Join(sorted(b), ",")
}

func sorted(ids []string) []string {
	out := make([]string, 0, len(ids))
	for id := range idSet(ids) {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// ofTenant keeps the objects that name the tenant ref (nil: the default tenant, which objects
// without a tenantRef use), so that each tenant is checked against its own objects: the same
// email on two tenants is two users.
func ofTenant(ref *iamv1alpha1.TenantReference, users []iamv1alpha1.CipherscaleUser, memberships []iamv1alpha1.CipherscaleGroupMembership) ([]iamv1alpha1.CipherscaleUser, []iamv1alpha1.CipherscaleGroupMembership) {
	same := func(r *iamv1alpha1.TenantReference) bool {
		if r == nil || ref == nil {
			return r == nil && ref == nil
		}
		return r.Kind == ref.Kind && r.Name == ref.Name
	}
	var us []iamv1alpha1.CipherscaleUser
	for _, u := range users {
		if same(u.Spec.TenantRef) {
			us = append(us, u)
		}
	}
	var ms []iamv1alpha1.CipherscaleGroupMembership
	for _, m := range memberships {
		if same(m.Spec.TenantRef) {
			ms = append(ms, m)
		}
	}
	return us, ms
}
