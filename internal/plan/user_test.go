package plan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// Role and group ids of the tests: uuids, as the API uses.
const (
	roleA  = "11111111-aaaa-4aaa-8aaa-000000000001"
	roleB  = "11111111-aaaa-4aaa-8aaa-000000000002"
	roleC  = "11111111-aaaa-4aaa-8aaa-000000000003"
	groupA = "22222222-bbbb-4bbb-8bbb-000000000001"
	groupB = "22222222-bbbb-4bbb-8bbb-000000000002"

	janeEmail = "jane.smith@company.com"
	janeImage = "https://example.com/avatars/jane.jpg"
)

func ptr[T any](v T) *T { return &v }

func ids(v ...string) *[]string {
	if v == nil {
		v = []string{}
	}
	return &v
}

// liveUser is a tenant user as the API reports it.
func liveUser(status cipherscale.Status, roleIDs ...string) *cipherscale.User {
	u := &cipherscale.User{
		ID:        "33333333-cccc-4ccc-8ccc-000000000001",
		Email:     janeEmail,
		Status:    status,
		FirstName: "Jane",
		LastName:  "Smith",
		Image:     janeImage,
		Roles:     cipherscale.RoleList{},
		Groups:    []cipherscale.Group{{ID: groupA}},
	}
	for _, id := range roleIDs {
		u.Roles = append(u.Roles, cipherscale.Role{ID: id, Name: "role " + id[len(id)-1:]})
	}
	return u
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name                   string
		want, have             []string
		wantAdded, wantRemoved []string
	}{
		{name: "both nil", want: nil, have: nil, wantAdded: []string{}, wantRemoved: []string{}},
		{name: "both empty", want: []string{}, have: []string{}, wantAdded: []string{}, wantRemoved: []string{}},
		{name: "empty want against nil have", want: []string{}, have: nil, wantAdded: []string{}, wantRemoved: []string{}},
		{name: "nil want removes everything", want: nil, have: []string{roleB, roleA}, wantAdded: []string{}, wantRemoved: []string{roleA, roleB}},
		{name: "empty want removes everything", want: []string{}, have: []string{roleA}, wantAdded: []string{}, wantRemoved: []string{roleA}},
		{name: "nil have adds everything", want: []string{roleC, roleA}, have: nil, wantAdded: []string{roleA, roleC}, wantRemoved: []string{}},
		{name: "equal", want: []string{roleA, roleB}, have: []string{roleB, roleA}, wantAdded: []string{}, wantRemoved: []string{}},
		{name: "partial", want: []string{roleA, roleC}, have: []string{roleA, roleB}, wantAdded: []string{roleC}, wantRemoved: []string{roleB}},
		{
			name:      "case-insensitive ids",
			want:      []string{strings.ToUpper(roleA), roleB},
			have:      []string{roleA, strings.ToUpper(roleB)},
			wantAdded: []string{}, wantRemoved: []string{},
		},
		{
			name:      "results are normalized",
			want:      []string{strings.ToUpper(roleC)},
			have:      []string{strings.ToUpper(roleB)},
			wantAdded: []string{roleC}, wantRemoved: []string{roleB},
		},
		{
			name:      "duplicates on both sides",
			want:      []string{roleC, roleC, strings.ToUpper(roleC), roleA},
			have:      []string{roleA, roleA, roleB, strings.ToUpper(roleB)},
			wantAdded: []string{roleC}, wantRemoved: []string{roleB},
		},
		{
			name:      "blank ids are ignored",
			want:      []string{"", " ", roleA},
			have:      []string{"", roleA},
			wantAdded: []string{}, wantRemoved: []string{},
		},
		{
			name:      "surrounding space is ignored",
			want:      []string{" " + roleA + "\n"},
			have:      []string{roleA},
			wantAdded: []string{}, wantRemoved: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			added, removed := plan.Diff(tc.want, tc.have)
			// Nil and empty mean the same to every caller (RolesPatch sends [] for both).
			if diff := cmp.Diff(tc.wantAdded, added, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("added mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRemoved, removed, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("removed mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanUserProfileAndRoles(t *testing.T) {
	tests := []struct {
		name string
		spec iamv1alpha1.CipherscaleUserSpec
		live *cipherscale.User
		want plan.UserPlan
	}{
		{
			name: "nothing managed: no change",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail},
			live: liveUser(cipherscale.StatusActive, roleA),
			want: plan.UserPlan{},
		},
		{
			name: "profile fields equal: no change",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, FirstName: ptr("Jane"), LastName: ptr("Smith"), Image: ptr(janeImage)},
			live: liveUser(cipherscale.StatusActive),
			want: plan.UserPlan{},
		},
		{
			name: "first name differs",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, FirstName: ptr("Janet"), LastName: ptr("Smith")},
			live: liveUser(cipherscale.StatusActive),
			want: plan.UserPlan{Profile: &cipherscale.ProfileUpdate{FirstName: ptr("Janet")}},
		},
		{
			name: "last name set to empty",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, LastName: ptr("")},
			live: liveUser(cipherscale.StatusActive),
			want: plan.UserPlan{Profile: &cipherscale.ProfileUpdate{LastName: ptr("")}},
		},
		{
			name: "empty equals empty",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Image: ptr("")},
			live: func() *cipherscale.User { u := liveUser(cipherscale.StatusActive); u.Image = ""; return u }(),
			want: plan.UserPlan{},
		},
		{
			name: "image set where the user has none",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Image: ptr(janeImage)},
			live: func() *cipherscale.User { u := liveUser(cipherscale.StatusActive); u.Image = ""; return u }(),
			want: plan.UserPlan{Profile: &cipherscale.ProfileUpdate{Image: ptr(janeImage)}},
		},
		{
			name: "every profile field differs",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, FirstName: ptr("J"), LastName: ptr("S"), Image: ptr("")},
			live: liveUser(cipherscale.StatusActive),
			want: plan.UserPlan{Profile: &cipherscale.ProfileUpdate{FirstName: ptr("J"), LastName: ptr("S"), Image: ptr("")}},
		},
		{
			name: "profile compared exactly, case included",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, FirstName: ptr("jane")},
			live: liveUser(cipherscale.StatusActive),
			want: plan.UserPlan{Profile: &cipherscale.ProfileUpdate{FirstName: ptr("jane")}},
		},
		{
			name: "roles omitted: not managed, even with roles in the tenant",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: nil},
			live: liveUser(cipherscale.StatusActive, roleA, roleB),
			want: plan.UserPlan{},
		},
		{
			name: "roles []: every direct role removed",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids()},
			live: liveUser(cipherscale.StatusActive, roleB, roleA),
			want: plan.UserPlan{Roles: &cipherscale.RolesPatch{AddedRoles: []string{}, RemovedRoles: []string{roleA, roleB}}},
		},
		{
			name: "roles [] and none in the tenant: no change",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids()},
			live: liveUser(cipherscale.StatusActive),
			want: plan.UserPlan{},
		},
		{
			name: "roles partially different",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids(roleA, roleC)},
			live: liveUser(cipherscale.StatusActive, roleA, roleB),
			want: plan.UserPlan{Roles: &cipherscale.RolesPatch{AddedRoles: []string{roleC}, RemovedRoles: []string{roleB}}},
		},
		{
			name: "roles only added",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids(roleA, roleB)},
			live: liveUser(cipherscale.StatusActive, roleA),
			want: plan.UserPlan{Roles: &cipherscale.RolesPatch{AddedRoles: []string{roleB}, RemovedRoles: []string{}}},
		},
		{
			name: "mixed-case role ids are the same roles",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids(strings.ToUpper(roleA), roleB)},
			live: liveUser(cipherscale.StatusActive, roleA, strings.ToUpper(roleB)),
			want: plan.UserPlan{},
		},
		{
			name: "mixed-case role ids: the patch carries normalized ids",
			spec: iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids(strings.ToUpper(roleC))},
			live: liveUser(cipherscale.StatusActive, strings.ToUpper(roleA)),
			want: plan.UserPlan{Roles: &cipherscale.RolesPatch{AddedRoles: []string{roleC}, RemovedRoles: []string{roleA}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := plan.PlanUser(&tc.spec, tc.live, nil, nil)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PlanUser mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanUserGroupsPassedThrough(t *testing.T) {
	spec := &iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Groups: ids(groupA)}
	live := liveUser(cipherscale.StatusActive)
	tests := []struct {
		name             string
		add, remove      []string
		wantAdd, wantRem []string
	}{
		{name: "none", add: nil, remove: nil, wantAdd: nil, wantRem: nil},
		{name: "empty lists are nil in the plan", add: []string{}, remove: []string{}, wantAdd: nil, wantRem: nil},
		{name: "blank ids dropped", add: []string{" "}, remove: []string{""}, wantAdd: nil, wantRem: nil},
		{
			name: "sorted, distinct, normalized",
			add:  []string{groupB, strings.ToUpper(groupA), groupA}, remove: []string{strings.ToUpper(groupB)},
			wantAdd: []string{groupA, groupB}, wantRem: []string{groupB},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := plan.PlanUser(spec, live, tc.add, tc.remove)
			// Here nil is asserted exactly: an empty plan has nil group lists.
			if diff := cmp.Diff(tc.wantAdd, got.AddGroups); diff != "" {
				t.Errorf("AddGroups mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRem, got.RemoveGroups); diff != "" {
				t.Errorf("RemoveGroups mismatch (-want +got):\n%s", diff)
			}
			if wantEmpty := tc.wantAdd == nil && tc.wantRem == nil; got.Empty() != wantEmpty {
				t.Errorf("Empty() = %t, want %t", got.Empty(), wantEmpty)
			}
		})
	}
}

func TestPlanUserActive(t *testing.T) {
	type want struct {
		reactivate, deactivate, ownerProtected bool
		unknown                                cipherscale.Status
	}
	tests := []struct {
		active  *bool
		status  cipherscale.Status
		isOwner bool
		want    want
	}{
		// active unset means active.
		{nil, "pending", false, want{}},
		{nil, "active", false, want{}},
		{nil, "inactive", false, want{reactivate: true}},
		{nil, "Suspended", false, want{unknown: "Suspended"}},
		{ptr(true), "pending", false, want{}},
		{ptr(true), "active", false, want{}},
		{ptr(true), "inactive", false, want{reactivate: true}},
		{ptr(true), "Suspended", false, want{unknown: "Suspended"}},
		{ptr(false), "pending", false, want{deactivate: true}},
		{ptr(false), "active", false, want{deactivate: true}},
		{ptr(false), "inactive", false, want{}},
		{ptr(false), "Suspended", false, want{unknown: "Suspended"}},
		// The API's status is compared case-insensitively.
		{ptr(true), "INACTIVE", false, want{reactivate: true}},
		{ptr(false), " Active ", false, want{deactivate: true}},
		{ptr(false), "Inactive", false, want{}},
		// An empty status is not known: left alone, and reported.
		{ptr(false), "", false, want{unknown: ""}},
		// The tenant owner is read-only: never deactivated, nor reactivated.
		{ptr(false), "active", true, want{ownerProtected: true}},
		{ptr(false), "pending", true, want{ownerProtected: true}},
		{ptr(false), "inactive", true, want{ownerProtected: true}},
		{ptr(true), "active", true, want{ownerProtected: true}},
		{ptr(true), "inactive", true, want{ownerProtected: true}},
		{ptr(false), "Suspended", true, want{ownerProtected: true, unknown: "Suspended"}},
	}
	for _, tc := range tests {
		active := "nil"
		if tc.active != nil {
			active = map[bool]string{true: "true", false: "false"}[*tc.active]
		}
		name := "active=" + active + "/status=" + string(tc.status)
		if tc.isOwner {
			name += "/owner"
		}
		t.Run(name, func(t *testing.T) {
			spec := &iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Active: tc.active}
			live := liveUser(tc.status)
			live.IsOwner = tc.isOwner
			p := plan.PlanUser(spec, live, nil, nil)
			got := want{reactivate: p.Reactivate, deactivate: p.Deactivate, ownerProtected: p.OwnerProtected, unknown: p.UnknownStatus}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("PlanUser mismatch (-want +got):\n%s", diff)
			}
			if p.Profile != nil || p.Roles != nil || p.AddGroups != nil || p.RemoveGroups != nil {
				t.Errorf("PlanUser changed more than the active state: %+v", p)
			}
			if wantEmpty := !tc.want.reactivate && !tc.want.deactivate; p.Empty() != wantEmpty {
				t.Errorf("Empty() = %t, want %t (OwnerProtected and UnknownStatus make no call)", p.Empty(), wantEmpty)
			}
		})
	}
}

func TestPlanUserEverythingAtOnce(t *testing.T) {
	spec := &iamv1alpha1.CipherscaleUserSpec{
		Email:     janeEmail,
		FirstName: ptr("Janet"),
		Active:    ptr(true),
		Roles:     ids(roleB),
		Groups:    ids(groupB),
	}
	live := liveUser(cipherscale.StatusInactive, roleA)
	got := plan.PlanUser(spec, live, []string{groupB}, []string{groupA})
	want := plan.UserPlan{
		Reactivate:   true,
		Profile:      &cipherscale.ProfileUpdate{FirstName: ptr("Janet")},
		Roles:        &cipherscale.RolesPatch{AddedRoles: []string{roleB}, RemovedRoles: []string{roleA}},
		AddGroups:    []string{groupB},
		RemoveGroups: []string{groupA},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PlanUser mismatch (-want +got):\n%s", diff)
	}
	if s := got.String(); s != "reactivate, profile (firstName), roles +1 -1, groups +1 -1" {
		t.Errorf("String() = %q", s)
	}
}

func TestPlanUserDoesNotModifyItsInputs(t *testing.T) {
	spec := &iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids(strings.ToUpper(roleB), roleA)}
	live := liveUser(cipherscale.StatusActive, strings.ToUpper(roleC))
	add := []string{groupB, strings.ToUpper(groupA)}
	specBefore, liveBefore, addBefore := *spec.Roles, *live, append([]string(nil), add...)
	liveBefore.Roles = append(cipherscale.RoleList(nil), live.Roles...)
	plan.PlanUser(spec, live, add, nil)
	if diff := cmp.Diff(specBefore, *spec.Roles); diff != "" {
		t.Errorf("spec.roles modified (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(liveBefore, *live); diff != "" {
		t.Errorf("live user modified (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(addBefore, add); diff != "" {
		t.Errorf("groupAdd modified (-before +after):\n%s", diff)
	}
}

func TestUserPlanEmptyAndString(t *testing.T) {
	tests := []struct {
		name      string
		p         plan.UserPlan
		wantEmpty bool
		wantStr   string
	}{
		{name: "zero", p: plan.UserPlan{}, wantEmpty: true, wantStr: "no change"},
		{name: "owner protected makes no call", p: plan.UserPlan{OwnerProtected: true}, wantEmpty: true, wantStr: "no change"},
		{name: "unknown status makes no call", p: plan.UserPlan{UnknownStatus: "Suspended"}, wantEmpty: true, wantStr: "no change"},
		{name: "empty group lists make no call", p: plan.UserPlan{AddGroups: []string{}, RemoveGroups: []string{}}, wantEmpty: true, wantStr: "no change"},
		{name: "reactivate", p: plan.UserPlan{Reactivate: true}, wantStr: "reactivate"},
		{name: "deactivate", p: plan.UserPlan{Deactivate: true}, wantStr: "deactivate"},
		{name: "empty profile update is still a call", p: plan.UserPlan{Profile: &cipherscale.ProfileUpdate{}}, wantStr: "profile ()"},
		{
			name:    "profile fields named, values not shown",
			p:       plan.UserPlan{Profile: &cipherscale.ProfileUpdate{FirstName: ptr("Jane"), LastName: ptr("Smith"), Image: ptr(janeImage)}},
			wantStr: "profile (firstName, lastName, image)",
		},
		{
			name:    "empty role patch is still a call",
			p:       plan.UserPlan{Roles: &cipherscale.RolesPatch{}},
			wantStr: "roles +0 -0",
		},
		{
			name:    "roles counted",
			p:       plan.UserPlan{Roles: &cipherscale.RolesPatch{AddedRoles: []string{roleA, roleB}, RemovedRoles: []string{roleC}}},
			wantStr: "roles +2 -1",
		},
		{name: "groups added", p: plan.UserPlan{AddGroups: []string{groupA}}, wantStr: "groups +1 -0"},
		{name: "groups removed", p: plan.UserPlan{RemoveGroups: []string{groupA, groupB}}, wantStr: "groups +0 -2"},
		{
			name: "every call, in order",
			p: plan.UserPlan{
				Reactivate: true, Profile: &cipherscale.ProfileUpdate{LastName: ptr("")},
				Roles:     &cipherscale.RolesPatch{RemovedRoles: []string{roleA}},
				AddGroups: []string{groupA}, RemoveGroups: []string{groupB}, Deactivate: true,
				OwnerProtected: true, UnknownStatus: "x",
			},
			wantStr: "reactivate, profile (lastName), roles +0 -1, groups +1 -1, deactivate",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Empty(); got != tc.wantEmpty {
				t.Errorf("Empty() = %t, want %t", got, tc.wantEmpty)
			}
			if got := tc.p.String(); got != tc.wantStr {
				t.Errorf("String() = %q, want %q", got, tc.wantStr)
			}
		})
	}
}

// TestUserPlanStringHasNoPersonalData: the plan is logged, so its text never holds an email, a
// name or an image URL, whatever the spec and the live user hold.
func TestUserPlanStringHasNoPersonalData(t *testing.T) {
	spec := &iamv1alpha1.CipherscaleUserSpec{
		Email:     "Secret.Person@private-example.org",
		FirstName: ptr("Zelda"),
		LastName:  ptr("Quixotic"),
		Image:     ptr("https://private-example.org/zelda.png"),
		Active:    ptr(false),
		Roles:     ids(roleB),
	}
	live := &cipherscale.User{
		ID: "33333333-cccc-4ccc-8ccc-000000000009", Email: "secret.person@private-example.org",
		Status: cipherscale.StatusActive, FirstName: "Bartholomew", LastName: "Umbridge", Image: "https://private-example.org/old.png",
	}
	p := plan.PlanUser(spec, live, []string{groupA}, nil)
	s := p.String()
	if p.Empty() || s == "no change" {
		t.Fatalf("expected a plan with changes, got %q", s)
	}
	for _, secret := range []string{"@", "Secret", "secret", "private-example", "Zelda", "Quixotic", "zelda", "Bartholomew", "Umbridge", ".png", "https", live.ID} {
		if strings.Contains(s, secret) {
			t.Errorf("String() = %q contains %q", s, secret)
		}
	}
}

func TestWantsActive(t *testing.T) {
	for _, tc := range []struct {
		active *bool
		want   bool
	}{{nil, true}, {ptr(true), true}, {ptr(false), false}} {
		if got := plan.WantsActive(&iamv1alpha1.CipherscaleUserSpec{Active: tc.active}); got != tc.want {
			t.Errorf("WantsActive(%v) = %t, want %t", tc.active, got, tc.want)
		}
	}
}

func TestStateOf(t *testing.T) {
	tests := []struct {
		in   cipherscale.Status
		want iamv1alpha1.UserState
	}{
		{"pending", iamv1alpha1.UserStatePending},
		{"Pending", iamv1alpha1.UserStatePending},
		{"active", iamv1alpha1.UserStateActive},
		{" ACTIVE ", iamv1alpha1.UserStateActive},
		{"inactive", iamv1alpha1.UserStateInactive},
		{"InActive", iamv1alpha1.UserStateInactive},
		// Anything else is reported as the API gave it, never guessed at.
		{"Suspended", "Suspended"},
		{"locked_out", "locked_out"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := plan.StateOf(tc.in); got != tc.want {
			t.Errorf("StateOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecideInvitation(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	sent := func(ago time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-ago)); return &t }
	auto := func(after time.Duration, maxResends *int32) *iamv1alpha1.CipherscaleUserSpec {
		return &iamv1alpha1.CipherscaleUserSpec{Email: janeEmail,
			Invitation: &iamv1alpha1.InvitationSpec{ResendAfter: metav1.Duration{Duration: after}, MaxResends: maxResends}}
	}
	manual := &iamv1alpha1.CipherscaleUserSpec{Email: janeEmail}

	tests := []struct {
		name       string
		spec       *iamv1alpha1.CipherscaleUserSpec
		st         *iamv1alpha1.InvitationStatus
		state      cipherscale.Status
		annotation string
		want       plan.InvitationDecision
	}{
		// Only a pending user is ever invited.
		{name: "active user, new annotation", spec: auto(time.Hour, nil), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(48 * time.Hour)},
			state: "active", annotation: "now", want: plan.InvitationDecision{}},
		{name: "inactive user, automatic due", spec: auto(time.Hour, nil), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(48 * time.Hour)},
			state: "inactive", want: plan.InvitationDecision{}},
		{name: "unknown status", spec: auto(time.Hour, nil), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(48 * time.Hour)},
			state: "Suspended", annotation: "x", want: plan.InvitationDecision{}},

		// The annotation.
		{name: "new annotation, no status yet", spec: manual, st: nil, state: "pending", annotation: "2025-06-01",
			want: plan.InvitationDecision{Resend: true, Requested: true, RequestValue: "2025-06-01"}},
		{name: "new annotation, status case-insensitive", spec: manual, st: &iamv1alpha1.InvitationStatus{LastResendRequest: "a"}, state: "Pending", annotation: "b",
			want: plan.InvitationDecision{Resend: true, Requested: true, RequestValue: "b"}},
		{name: "annotation already answered", spec: manual, st: &iamv1alpha1.InvitationStatus{LastResendRequest: "a", LastSentTime: sent(time.Minute)},
			state: "pending", annotation: "a", want: plan.InvitationDecision{}},
		{name: "no annotation", spec: manual, st: &iamv1alpha1.InvitationStatus{LastResendRequest: "a"}, state: "pending", annotation: "",
			want: plan.InvitationDecision{}},
		{name: "new annotation ignores maxResends", spec: auto(time.Hour, ptr(int32(1))),
			st:    &iamv1alpha1.InvitationStatus{Resends: 5, LastSentTime: sent(time.Minute), LastResendRequest: "old"},
			state: "pending", annotation: "new", want: plan.InvitationDecision{Resend: true, Requested: true, RequestValue: "new"}},
		{name: "answered annotation, automatic due: automatic resend", spec: auto(time.Hour, nil),
			st:    &iamv1alpha1.InvitationStatus{LastSentTime: sent(2 * time.Hour), LastResendRequest: "a"},
			state: "pending", annotation: "a", want: plan.InvitationDecision{Resend: true}},

		// Automatic resends.
		{name: "automatic due", spec: auto(72*time.Hour, nil), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(73 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{Resend: true}},
		{name: "automatic due exactly now", spec: auto(72*time.Hour, nil), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(72 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{Resend: true}},
		{name: "automatic not due yet", spec: auto(72*time.Hour, nil), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(time.Hour)},
			state: "pending", want: plan.InvitationDecision{Next: 71 * time.Hour}},
		{name: "automatic not due by a second", spec: auto(time.Hour, nil), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(time.Hour - time.Second)},
			state: "pending", want: plan.InvitationDecision{Next: time.Second}},
		{name: "maxResends reached", spec: auto(time.Hour, ptr(int32(2))), st: &iamv1alpha1.InvitationStatus{Resends: 2, LastSentTime: sent(48 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{}},
		{name: "maxResends not reached", spec: auto(time.Hour, ptr(int32(2))), st: &iamv1alpha1.InvitationStatus{Resends: 1, LastSentTime: sent(48 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{Resend: true}},
		{name: "maxResends 0 never resends", spec: auto(time.Hour, ptr(int32(0))), st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(48 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{}},
		{name: "maxResends reached, not due either: no Next", spec: auto(time.Hour, ptr(int32(1))), st: &iamv1alpha1.InvitationStatus{Resends: 1, LastSentTime: sent(time.Minute)},
			state: "pending", want: plan.InvitationDecision{}},
		{name: "default maxResends 3: third resend allowed", spec: auto(time.Hour, nil), st: &iamv1alpha1.InvitationStatus{Resends: 2, LastSentTime: sent(48 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{Resend: true}},
		{name: "default maxResends 3: no fourth", spec: auto(time.Hour, nil), st: &iamv1alpha1.InvitationStatus{Resends: 3, LastSentTime: sent(48 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{}},
		{name: "no LastSentTime: nothing automatic", spec: auto(time.Hour, nil), st: &iamv1alpha1.InvitationStatus{Resends: 0},
			state: "pending", want: plan.InvitationDecision{}},
		{name: "no invitation status: nothing automatic", spec: auto(time.Hour, nil), st: nil,
			state: "pending", want: plan.InvitationDecision{}},
		{name: "no spec.invitation: nothing automatic", spec: manual, st: &iamv1alpha1.InvitationStatus{LastSentTime: sent(1000 * time.Hour)},
			state: "pending", want: plan.InvitationDecision{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := plan.DecideInvitation(tc.spec, tc.st, tc.state, tc.annotation, now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecideInvitation mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
