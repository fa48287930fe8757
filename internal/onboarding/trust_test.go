package onboarding

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// TestPlanPredictsTheOperatorsTrust: plan refuses what the operator refuses, with the reasons
// the operator's conditions carry (the specs of internal/controller/trust_test.go and
// membership_controller_test.go), through the same decisions (internal/decide, plan.TrustPolicy).
func TestPlanPredictsTheOperatorsTrust(t *testing.T) {
	n := 0
	user := func(ns, name, email, id string, mutate ...func(*iamv1alpha1.CipherscaleUser)) *iamv1alpha1.CipherscaleUser {
		n++
		u := &iamv1alpha1.CipherscaleUser{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1000+int64(n), 0))},
			Spec:       iamv1alpha1.CipherscaleUserSpec{Email: email},
		}
		u.Status.ID = id
		for _, m := range mutate {
			m(u)
		}
		return u
	}
	membership := func(ns, name, group string, policy iamv1alpha1.MembershipPolicy, members ...iamv1alpha1.Member) *iamv1alpha1.CipherscaleGroupMembership {
		n++
		return &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1000+int64(n), 0))},
			Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, Policy: policy, Members: members},
		}
	}
	onlyNS := func(ns string) plan.NamespaceRule { return func(s string) bool { return s == ns } }
	// No listed privileged groups: a group is privileged unless what a member inherits says it
	// is not (GroupRoles).
	engIsBasic := map[string][][]cipherscale.Role{engID: {{{ID: "r-basic", Type: cipherscale.RoleTypeBasic}}}}
	noPrivilegedGroups := plan.TrustPolicy{PrivilegedGroups: []string{}}

	tests := []struct {
		name        string
		users       []*iamv1alpha1.CipherscaleUser
		memberships []*iamv1alpha1.CipherscaleGroupMembership
		trust       plan.TrustPolicy
		usable      func(string) bool
		groupRoles  map[string][][]cipherscale.Role
		// want maps "Kind/ns/name" to the start of its summary.
		want map[string]string
	}{
		{name: "a new object for an existing user, from a namespace that may not adopt",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "")},
			want:  map[string]string{"CipherscaleUser/ns/kai": iamv1alpha1.ReasonAdoptionNotAllowed + ": "}},
		{name: "the same, from a namespace that may adopt",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "")},
			trust: plan.TrustPolicy{Adoption: onlyNS("ns")},
			want:  map[string]string{"CipherscaleUser/ns/kai": "adopt tenant user u-kai"}},
		{name: "an id named by hand, from a namespace that may not adopt",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "", func(u *iamv1alpha1.CipherscaleUser) {
				u.Annotations = map[string]string{annotationUserID: "u-kai"}
			})},
			want: map[string]string{"CipherscaleUser/ns/kai": iamv1alpha1.ReasonAdoptionNotAllowed + ": the annotation"}},
		{name: "the object's own record needs no trust",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "u-kai")},
			want:  map[string]string{"CipherscaleUser/ns/kai": "no change"}},
		{name: "a privileged role from a namespace that is not privileged",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "u-kai", func(u *iamv1alpha1.CipherscaleUser) {
				u.Spec.Roles = &[]string{adminID}
			})},
			want: map[string]string{"CipherscaleUser/ns/kai": iamv1alpha1.ReasonNotAllowed + ": spec.roles"}},
		{name: "a group whose roles cannot be told is privileged",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "u-kai", func(u *iamv1alpha1.CipherscaleUser) {
				u.Spec.Groups = &[]string{engID}
			})},
			want: map[string]string{"CipherscaleUser/ns/kai": iamv1alpha1.ReasonNotAllowed + ": spec.groups"}},
		{name: "a group whose members inherit no privileged role is not",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "u-kai", func(u *iamv1alpha1.CipherscaleUser) {
				u.Spec.Groups = &[]string{engID}
			})},
			groupRoles: engIsBasic,
			want:       map[string]string{"CipherscaleUser/ns/kai": "groups +1 -0"}},
		{name: "an Authoritative membership from a namespace that is not privileged",
			memberships: []*iamv1alpha1.CipherscaleGroupMembership{membership("ns", "eng", engID, iamv1alpha1.MembershipPolicyAuthoritative, iamv1alpha1.Member{Email: "sam@example.com"})},
			trust:       noPrivilegedGroups,
			want:        map[string]string{"CipherscaleGroupMembership/ns/eng": iamv1alpha1.ReasonNotAllowed + ": an Authoritative membership"}},
		{name: "a membership of a privileged group, from a namespace that is not privileged",
			memberships: []*iamv1alpha1.CipherscaleGroupMembership{membership("ns", "eng", engID, iamv1alpha1.MembershipPolicyAdditive, iamv1alpha1.Member{Email: "sam@example.com"})},
			trust:       plan.TrustPolicy{Adoption: onlyNS("ns"), PrivilegedGroups: []string{engID}},
			want:        map[string]string{"CipherscaleGroupMembership/ns/eng": iamv1alpha1.ReasonNotAllowed + ": this membership's group is privileged"}},
		{name: "a membership may not act on a user another namespace manages",
			users:       []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "u-kai")},
			memberships: []*iamv1alpha1.CipherscaleGroupMembership{membership("other", "eng", engID, iamv1alpha1.MembershipPolicyAdditive, iamv1alpha1.Member{Email: "kai@example.com"})},
			trust:       plan.TrustPolicy{Adoption: onlyNS("other"), PrivilegedGroups: []string{}},
			want: map[string]string{
				"CipherscaleUser/ns/kai":               "no change", // the refused membership declares nothing
				"CipherscaleGroupMembership/other/eng": iamv1alpha1.ReasonNotAllowed + ": 1 members are users that a CipherscaleUser of another namespace manages",
			}},
		{name: "an email member nobody declares, from a namespace that may not adopt",
			memberships: []*iamv1alpha1.CipherscaleGroupMembership{membership("ns", "eng", engID, iamv1alpha1.MembershipPolicyAdditive, iamv1alpha1.Member{Email: "kai@example.com"})},
			trust:       noPrivilegedGroups,
			want:        map[string]string{"CipherscaleGroupMembership/ns/eng": iamv1alpha1.ReasonAdoptionNotAllowed + ": 1 email members have no CipherscaleUser"}},
		{name: "a group a membership declares is added by the user's own pass",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "kai", "kai@example.com", "u-kai")},
			memberships: []*iamv1alpha1.CipherscaleGroupMembership{membership("ns", "eng", engID, iamv1alpha1.MembershipPolicyAdditive,
				iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: "kai"}})},
			trust: noPrivilegedGroups,
			want: map[string]string{
				"CipherscaleUser/ns/kai":            "groups +1 -0",
				"CipherscaleGroupMembership/ns/eng": "no change",
			}},
		{name: "the tenant owner is read-only",
			users: []*iamv1alpha1.CipherscaleUser{user("ns", "owner", "owner@example.com", "u-owner", func(u *iamv1alpha1.CipherscaleUser) {
				u.Spec.FirstName = ptr("Someone")
			})},
			trust: plan.AllowAll(),
			want:  map[string]string{"CipherscaleUser/ns/owner": iamv1alpha1.ReasonOwnerProtected + ": the tenant owner is read-only"}},
		{name: "the object that recorded the id owns the email, before an older one",
			users: []*iamv1alpha1.CipherscaleUser{user("a", "kai-first", "kai@example.com", ""), user("b", "kai", "kai@example.com", "u-kai")},
			trust: plan.AllowAll(),
			want: map[string]string{
				"CipherscaleUser/a/kai-first": iamv1alpha1.ReasonEmailConflict + ": ",
				"CipherscaleUser/b/kai":       "no change",
			}},
		{name: "a namespace the tenant does not select",
			users:  []*iamv1alpha1.CipherscaleUser{user("x", "kai", "kai@example.com", "u-kai")},
			trust:  plan.AllowAll(),
			usable: func(ns string) bool { return ns != "x" },
			want:   map[string]string{"CipherscaleUser/x/kai": iamv1alpha1.ReasonInvalidTenant + ": "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Plan(Input{Users: tt.users, Memberships: tt.memberships, Tenant: sampleTenant(),
				Trust: tt.trust, TenantUsable: tt.usable, GroupRoles: tt.groupRoles})
			got := map[string]string{}
			for _, o := range res.Objects {
				got[o.Kind+"/"+o.Namespace+"/"+o.Name] = o.Summary
			}
			for k, want := range tt.want {
				if !strings.HasPrefix(got[k], want) {
					t.Errorf("%s: %q, want it to start with %q", k, got[k], want)
				}
			}
		})
	}
}
