package main

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

const (
	roleA, roleB   = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	groupE, groupS = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
)

func ptr[T any](v T) *T { return &v }

// objects: jane declares roleA and groupE; a membership adds jane to groupS (Authoritative)
// and the contractor to groupE.
func objects() ([]iamv1alpha1.CipherscaleUser, []iamv1alpha1.CipherscaleGroupMembership) {
	jane := iamv1alpha1.CipherscaleUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "jane"},
		Spec: iamv1alpha1.CipherscaleUserSpec{Email: "jane@example.com", FirstName: ptr("Jane"),
			Roles: ptr([]string{roleA}), Groups: ptr([]string{groupE})},
		Status: iamv1alpha1.CipherscaleUserStatus{ID: "u-jane"},
	}
	m := iamv1alpha1.CipherscaleGroupMembership{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "support"},
		Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: groupS, Policy: iamv1alpha1.MembershipPolicyAuthoritative,
			Members: []iamv1alpha1.Member{{UserRef: &iamv1alpha1.UserReference{Name: "jane"}}}},
	}
	c := iamv1alpha1.CipherscaleGroupMembership{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "contractors"},
		Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: groupE, Members: []iamv1alpha1.Member{{Email: "c@example.com"}}},
	}
	return []iamv1alpha1.CipherscaleUser{jane}, []iamv1alpha1.CipherscaleGroupMembership{m, c}
}

func matching() []simulator.UserRecord {
	return []simulator.UserRecord{
		{InvitationsSent: 1, User: cipherscale.User{ID: "u-jane", Email: "Jane@example.com", Status: cipherscale.StatusPending, FirstName: "Jane",
			Roles: cipherscale.RoleList{{ID: roleA}}, Groups: []cipherscale.Group{{ID: groupE}, {ID: groupS}}}},
		{User: cipherscale.User{ID: "u-c", Email: "c@example.com", Status: cipherscale.StatusActive, Groups: []cipherscale.Group{{ID: groupE}}}},
		{User: cipherscale.User{ID: "u-owner", Email: "owner@example.com", Status: cipherscale.StatusActive, IsOwner: true}},
	}
}

func TestCheckTenant(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(recs []simulator.UserRecord) []simulator.UserRecord
		want   string // a problem containing this; "" for none
	}{
		{"matching tenant", func(r []simulator.UserRecord) []simulator.UserRecord { return r }, ""},
		{"user missing", func(r []simulator.UserRecord) []simulator.UserRecord { return r[1:] }, "jane: 0 tenant users"},
		{"user twice", func(r []simulator.UserRecord) []simulator.UserRecord {
			twin := r[0]
			twin.User.ID = "u-twin"
			return append(r, twin)
		}, "jane: 2 tenant users"},
		{"another id", func(r []simulator.UserRecord) []simulator.UserRecord { r[0].User.ID = "u-other"; return r }, "status.id"},
		{"invited twice", func(r []simulator.UserRecord) []simulator.UserRecord { r[0].InvitationsSent = 2; return r }, "2 invitations"},
		{"extra role", func(r []simulator.UserRecord) []simulator.UserRecord {
			r[0].User.Roles = append(r[0].User.Roles, cipherscale.Role{ID: roleB})
			return r
		}, "direct roles"},
		{"wrong name", func(r []simulator.UserRecord) []simulator.UserRecord { r[0].User.FirstName = "Mallory"; return r }, "firstName"},
		{"deactivated", func(r []simulator.UserRecord) []simulator.UserRecord {
			r[0].User.Status = cipherscale.StatusInactive
			return r
		}, "want active true"},
		{"membership's group missing", func(r []simulator.UserRecord) []simulator.UserRecord {
			r[0].User.Groups = []cipherscale.Group{{ID: groupE}}
			return r
		}, "not in group " + groupS},
		{"email member missing from group", func(r []simulator.UserRecord) []simulator.UserRecord { r[1].User.Groups = nil; return r }, "member c@example.com"},
		{"stranger in the Authoritative group", func(r []simulator.UserRecord) []simulator.UserRecord {
			r[2].User.Groups = []cipherscale.Group{{ID: groupS}}
			return r
		}, "owner@example.com is in the Authoritative group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, memberships := objects()
			got := checkTenant(users, memberships, tc.change(matching()))
			if got.Users != 1 || got.Memberships != 2 {
				t.Errorf("checked %d users and %d memberships, want 1 and 2", got.Users, got.Memberships)
			}
			joined := strings.Join(got.Problems, "\n")
			switch {
			case tc.want == "" && len(got.Problems) > 0:
				t.Errorf("a matching tenant has problems:\n%s", joined)
			case tc.want != "" && !strings.Contains(joined, tc.want):
				t.Errorf("problems %q do not mention %q", joined, tc.want)
			}
		})
	}
}

// TestCheckPerTenant: each tenant is checked against its own objects; the same email on a
// second tenant is that tenant's user, and a user missing there is reported for that tenant.
func TestCheckPerTenant(t *testing.T) {
	users, memberships := objects()
	qa := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}
	onQA := users[0]
	onQA.Namespace, onQA.Spec.TenantRef = "team-qa", qa
	onQA.Spec.Roles, onQA.Spec.Groups, onQA.Status.ID = nil, nil, "u-jane-qa"
	all := append(append([]iamv1alpha1.CipherscaleUser{}, users...), onQA)

	defUsers, defMemberships := ofTenant(nil, all, memberships)
	if len(defUsers) != 1 || len(defMemberships) != 2 {
		t.Fatalf("default tenant: %d users and %d memberships, want 1 and 2", len(defUsers), len(defMemberships))
	}
	if c := checkTenant(defUsers, defMemberships, matching()); len(c.Problems) > 0 {
		t.Errorf("default tenant: %v", c.Problems)
	}
	qaUsers, qaMemberships := ofTenant(qa, all, memberships)
	if len(qaUsers) != 1 || len(qaMemberships) != 0 {
		t.Fatalf("qa tenant: %d users and %d memberships, want 1 and 0", len(qaUsers), len(qaMemberships))
	}
	qaTenant := []simulator.UserRecord{{InvitationsSent: 1, User: cipherscale.User{ID: "u-jane-qa", Email: "jane@example.com", Status: cipherscale.StatusPending, FirstName: "Jane"}}}
	if c := checkTenant(qaUsers, qaMemberships, qaTenant); len(c.Problems) > 0 {
		t.Errorf("qa tenant: %v", c.Problems)
	}
	if c := checkTenant(qaUsers, qaMemberships, nil); len(c.Problems) != 1 || !strings.Contains(c.Problems[0], "0 tenant users") {
		t.Errorf("qa tenant without the user: %v, want it reported", c.Problems)
	}
}
