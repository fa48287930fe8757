package plan_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

func TestParseNamespaces(t *testing.T) {
	tests := []struct {
		flag    string
		allowed []string
		refused []string
		wantErr bool
	}{
		{flag: "", refused: []string{"team-a", "default", ""}},
		{flag: " , ", refused: []string{"team-a"}},
		{flag: "*", allowed: []string{"team-a", "kube-system", "default"}},
		{flag: "team-a, *", allowed: []string{"team-b"}},
		{flag: "team-a,team-b", allowed: []string{"team-a", "team-b"}, refused: []string{"team-c", "team", "Team-a", ""}},
		{flag: " platform ", allowed: []string{"platform"}, refused: []string{" platform "}},
		{flag: "team-*", wantErr: true},
		{flag: "Team-A", wantErr: true},
		{flag: "a/b", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.flag, func(t *testing.T) {
			rule, err := plan.ParseNamespaces(tc.flag)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseNamespaces(%q) error = %v, want error %t", tc.flag, err, tc.wantErr)
			}
			for _, ns := range tc.allowed {
				if !rule.Allows(ns) {
					t.Errorf("%q does not allow %q", tc.flag, ns)
				}
			}
			for _, ns := range tc.refused {
				if rule.Allows(ns) {
					t.Errorf("%q allows %q", tc.flag, ns)
				}
			}
		})
	}
}

func TestTrustPolicyZeroAllowsNothing(t *testing.T) {
	var p plan.TrustPolicy
	if p.MayAdopt("default") || p.MayBeAuthoritative("default") {
		t.Errorf("the zero policy allows adoption or Authoritative memberships")
	}
	all := plan.AllowAll()
	if !all.MayAdopt("x") || !all.MayBeAuthoritative("x") {
		t.Errorf("AllowAll refuses")
	}
}

func TestRefusedRoles(t *testing.T) {
	const (
		admin   = "AAAAAAAA-0000-4000-8000-000000000001"
		owner   = "aaaaaaaa-0000-4000-8000-000000000002"
		support = "aaaaaaaa-0000-4000-8000-000000000003"
		unknown = "aaaaaaaa-0000-4000-8000-000000000004"
	)
	types := map[string]cipherscale.RoleType{
		plan.NormalizeID(admin): cipherscale.RoleTypeAdmin,
		owner:                   "owner", // the type is compared case-insensitively
		support:                 cipherscale.RoleTypeSupport,
	}
	privilegedNS := func(ns string) bool { return ns == "platform" }
	byType := plan.TrustPolicy{Privileged: privilegedNS}
	explicit := plan.TrustPolicy{Privileged: privilegedNS, PrivilegedRoles: []string{support}}
	held := func(ids ...string) []cipherscale.Role {
		var out []cipherscale.Role
		for _, id := range ids {
			out = append(out, cipherscale.Role{ID: id})
		}
		return out
	}
	tests := []struct {
		name   string
		policy plan.TrustPolicy
		ns     string
		spec   *[]string
		held   []cipherscale.Role
		want   []string
	}{
		{"roles not managed", byType, "team-a", nil, held(admin), nil},
		{"a plain role", byType, "team-a", ids(support), nil, nil},
		{"granting admin", byType, "team-a", ids(support, admin), nil, []string{plan.NormalizeID(admin)}},
		{"granting admin from an allowed namespace", byType, "platform", ids(admin), nil, nil},
		{"keeping admin is still managing it", byType, "team-a", ids(admin), held(admin), []string{plan.NormalizeID(admin)}},
		{"removing admin", byType, "team-a", ids(), held(admin, support), []string{plan.NormalizeID(admin)}},
		{"removing a plain role", byType, "team-a", ids(), held(support), nil},
		{"an owner-type role", byType, "team-a", ids(owner), nil, []string{owner}},
		{"a role of unknown type", byType, "team-a", ids(unknown), nil, []string{unknown}},
		{"a held role's own type counts", byType, "team-a", ids(unknown), []cipherscale.Role{{ID: unknown, Type: cipherscale.RoleTypeBasic}}, nil},
		{"explicit list: only it is privileged", explicit, "team-a", ids(admin, unknown, support), nil, []string{support}},
		{"explicit list, removal", explicit, "team-a", ids(), held(support, admin), []string{support}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.policy.RefusedRoles(tc.ns, tc.spec, tc.held, types)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RefusedRoles mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreatedFor(t *testing.T) {
	obj := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		created time.Time
		want    bool
	}{
		{"after the object", obj.Add(time.Second), true},
		{"within the clock skew", obj.Add(-plan.CreationSkew + time.Second), true},
		{"before the object", obj.Add(-plan.CreationSkew - time.Second), false},
		{"long before", obj.Add(-365 * 24 * time.Hour), false},
		{"unknown", time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := plan.CreatedFor(obj, &cipherscale.User{CreatedAt: tc.created}); got != tc.want {
				t.Errorf("CreatedFor = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestInvitationCap(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	ago := func(d ...time.Duration) []time.Time {
		var out []time.Time
		for _, x := range d {
			out = append(out, now.Add(-x))
		}
		return out
	}
	h := time.Hour
	tests := []struct {
		name      string
		sent      []time.Time
		limit     int
		wantOK    bool
		wantUntil time.Time
	}{
		{"none sent", nil, 5, true, time.Time{}},
		{"four in the day", ago(1*h, 2*h, 3*h, 4*h), 5, true, time.Time{}},
		{"five in the day", ago(1*h, 2*h, 3*h, 4*h, 5*h), 5, false, now.Add(-5 * h).Add(24 * h)},
		{"in any order", ago(5*h, 1*h, 4*h, 2*h, 3*h), 5, false, now.Add(-5 * h).Add(24 * h)},
		{"older sends leave the window", ago(1*h, 2*h, 3*h, 4*h, 25*h, 30*h), 5, true, time.Time{}},
		{"more than the cap: free once all but four left the window", ago(1*h, 2*h, 3*h, 4*h, 5*h, 6*h), 5, false, now.Add(-5 * h).Add(24 * h)},
		{"no cap", ago(1*h, 1*h, 1*h), 0, true, time.Time{}},
		{"a cap of one", ago(23 * h), 1, false, now.Add(h)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, until := plan.InvitationCap(tc.sent, tc.limit, now)
			if ok != tc.wantOK || !until.Equal(tc.wantUntil) {
				t.Errorf("InvitationCap = %t, %v; want %t, %v", ok, until, tc.wantOK, tc.wantUntil)
			}
		})
	}
}

// The tenant owner is read-only: whatever the spec asks, the plan makes no call, and says what
// differs.
func TestPlanUserOwner(t *testing.T) {
	owner := func() *cipherscale.User {
		u := liveUser(cipherscale.StatusActive, roleA)
		u.IsOwner = true
		return u
	}
	tests := []struct {
		name     string
		spec     iamv1alpha1.CipherscaleUserSpec
		add, rem []string
		withheld string
	}{
		{"matching spec", iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, FirstName: ptr("Jane"), Roles: ids(roleA), Groups: ids(groupA)}, nil, nil, ""},
		{"roles emptied", iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Roles: ids()}, nil, nil, "roles +0 -1"},
		{"profile rewritten", iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, FirstName: ptr("Pwned"), Image: ptr("https://evil.example.com/x.png")}, nil, nil, "profile (firstName, image)"},
		{"deactivated", iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Active: ptr(false)}, nil, nil, "deactivate"},
		{"groups changed", iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, Groups: ids()}, []string{groupB}, []string{groupA}, "groups +1 -1"},
		{"everything", iamv1alpha1.CipherscaleUserSpec{Email: janeEmail, LastName: ptr("X"), Roles: ids(roleB), Active: ptr(false)}, nil, []string{groupA},
			"profile (lastName), roles +1 -1, groups +0 -1, deactivate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := plan.PlanUser(&tc.spec, owner(), tc.add, tc.rem)
			want := plan.UserPlan{OwnerProtected: true, Withheld: tc.withheld}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("PlanUser for the owner (-want +got):\n%s", diff)
			}
			if !p.Empty() {
				t.Errorf("the plan writes to the owner: %s", p)
			}
		})
	}
}

func TestTenantTrust(t *testing.T) {
	nsLabels := map[string]map[string]string{
		"team-a":   {"adopt": "yes", "admin": "yes"},
		"team-b":   {"adopt": "yes"},
		"team-c":   {"other": "x"},
		"platform": {"admin": "yes"},
	}
	labelsOf := func(ns string) map[string]string { return nsLabels[ns] }
	adoptSel := &metav1.LabelSelector{MatchLabels: map[string]string{"adopt": "yes"}}
	adminSel := &metav1.LabelSelector{MatchLabels: map[string]string{"admin": "yes"}}
	badSel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "adopt", Operator: "Bogus"}}}
	all := []string{"team-a", "team-b", "team-c", "platform", "unknown"}
	tests := []struct {
		name       string
		kind       iamv1alpha1.TenantKind
		tenantNS   string
		adoption   *iamv1alpha1.AdoptionSpec
		privileged *iamv1alpha1.PrivilegedSpec
		adopt      []string // the namespaces that may adopt; every other of all may not
		priv       []string // the namespaces that are privileged
		roles      []string
		groups     []string
	}{
		{name: "cluster, nothing given: no namespace may do either", kind: iamv1alpha1.KindClusterCipherscaleTenant},
		{name: "cluster, empty specs: still none", kind: iamv1alpha1.KindClusterCipherscaleTenant,
			adoption: &iamv1alpha1.AdoptionSpec{}, privileged: &iamv1alpha1.PrivilegedSpec{}},
		{name: "cluster, selectors", kind: iamv1alpha1.KindClusterCipherscaleTenant,
			adoption:   &iamv1alpha1.AdoptionSpec{NamespaceSelector: adoptSel},
			privileged: &iamv1alpha1.PrivilegedSpec{NamespaceSelector: adminSel, Roles: []iamv1alpha1.ID{"R-1", "r-2"}},
			adopt:      []string{"team-a", "team-b"}, priv: []string{"team-a", "platform"}, roles: []string{"R-1", "r-2"}},
		{name: "cluster, {} selects every namespace", kind: iamv1alpha1.KindClusterCipherscaleTenant,
			adoption:   &iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{}},
			privileged: &iamv1alpha1.PrivilegedSpec{NamespaceSelector: &metav1.LabelSelector{}, Roles: []iamv1alpha1.ID{}},
			adopt:      all, priv: all},
		{name: "cluster, an invalid selector selects none", kind: iamv1alpha1.KindClusterCipherscaleTenant,
			adoption: &iamv1alpha1.AdoptionSpec{NamespaceSelector: badSel}, privileged: &iamv1alpha1.PrivilegedSpec{NamespaceSelector: badSel}},
		{name: "namespaced, nothing given: its own namespace may do both", kind: iamv1alpha1.KindCipherscaleTenant, tenantNS: "team-c",
			adopt: []string{"team-c"}, priv: []string{"team-c"}},
		{name: "namespaced, adoption selector ignored: its own namespace only", kind: iamv1alpha1.KindCipherscaleTenant, tenantNS: "team-c",
			adoption: &iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{}},
			adopt:    []string{"team-c"}, priv: []string{"team-c"}},
		{name: "namespaced, privileged selector selects it", kind: iamv1alpha1.KindCipherscaleTenant, tenantNS: "team-a",
			privileged: &iamv1alpha1.PrivilegedSpec{NamespaceSelector: adminSel, Roles: []iamv1alpha1.ID{"r-9"}},
			adopt:      []string{"team-a"}, priv: []string{"team-a"}, roles: []string{"r-9"}},
		{name: "namespaced, privileged selector leaves it out", kind: iamv1alpha1.KindCipherscaleTenant, tenantNS: "team-b",
			privileged: &iamv1alpha1.PrivilegedSpec{NamespaceSelector: adminSel},
			adopt:      []string{"team-b"}},
		{name: "namespaced, privileged without a selector: none", kind: iamv1alpha1.KindCipherscaleTenant, tenantNS: "team-a",
			privileged: &iamv1alpha1.PrivilegedSpec{Roles: []iamv1alpha1.ID{"r-9"}},
			adopt:      []string{"team-a"}, roles: []string{"r-9"}},
		{name: "cluster, privileged groups listed", kind: iamv1alpha1.KindClusterCipherscaleTenant,
			privileged: &iamv1alpha1.PrivilegedSpec{NamespaceSelector: adminSel, Groups: &[]iamv1alpha1.ID{"G-1"}},
			priv:       []string{"team-a", "platform"}, groups: []string{"G-1"}},
		{name: "cluster, privileged groups an empty list: none privileged (not omitted)", kind: iamv1alpha1.KindClusterCipherscaleTenant,
			privileged: &iamv1alpha1.PrivilegedSpec{Groups: &[]iamv1alpha1.ID{}}, groups: []string{}},
		{name: "namespaced, privileged groups listed", kind: iamv1alpha1.KindCipherscaleTenant, tenantNS: "team-c",
			privileged: &iamv1alpha1.PrivilegedSpec{Groups: &[]iamv1alpha1.ID{"g-2"}},
			adopt:      []string{"team-c"}, groups: []string{"g-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan.TenantTrust(tt.kind, tt.tenantNS, tt.adoption, tt.privileged, labelsOf)
			in := func(list []string, ns string) bool {
				for _, n := range list {
					if n == ns {
						return true
					}
				}
				return false
			}
			for _, ns := range all {
				if got, want := p.MayAdopt(ns), in(tt.adopt, ns); got != want {
					t.Errorf("MayAdopt(%s) = %v, want %v", ns, got, want)
				}
				if got, want := p.MayBeAuthoritative(ns), in(tt.priv, ns); got != want {
					t.Errorf("MayBeAuthoritative(%s) = %v, want %v", ns, got, want)
				}
			}
			if diff := cmp.Diff(tt.roles, p.PrivilegedRoles); diff != "" {
				t.Errorf("PrivilegedRoles (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.groups, p.PrivilegedGroups); diff != "" {
				t.Errorf("PrivilegedGroups (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrivilegedGroup(t *testing.T) {
	const (
		admin   = "aaaaaaaa-0000-4000-8000-000000000001"
		support = "aaaaaaaa-0000-4000-8000-000000000003"
		untyped = "aaaaaaaa-0000-4000-8000-000000000004"
		group   = "BBBBBBBB-0000-4000-8000-000000000001"
		other   = "bbbbbbbb-0000-4000-8000-000000000002"
	)
	role := func(id string, typ cipherscale.RoleType) cipherscale.Role { return cipherscale.Role{ID: id, Type: typ} }
	adminRole, supportRole := role(admin, cipherscale.RoleTypeAdmin), role(support, cipherscale.RoleTypeSupport)
	tests := []struct {
		name      string
		policy    plan.TrustPolicy
		inherited [][]cipherscale.Role
		types     map[string]cipherscale.RoleType
		want      bool
	}{
		{name: "no member read: unknown is privileged", want: true},
		{name: "a member inherits no role", inherited: [][]cipherscale.Role{{}}, want: false},
		{name: "a member inherits a support role", inherited: [][]cipherscale.Role{{supportRole}}, want: false},
		{name: "a member inherits ADMIN", inherited: [][]cipherscale.Role{{supportRole, adminRole}}, want: true},
		{name: "the type is compared case-insensitively", inherited: [][]cipherscale.Role{{role(admin, "admin")}}, want: true},
		{name: "a role without a type is privileged", inherited: [][]cipherscale.Role{{role(untyped, "")}}, want: true},
		{name: "a role without a type in the answer, known from the snapshot", inherited: [][]cipherscale.Role{{role(untyped, "")}},
			types: map[string]cipherscale.RoleType{untyped: cipherscale.RoleTypeSupport}, want: false},
		// One member inherits ADMIN (through this group or another: the answer does not say),
		// another inherits nothing privileged: this group carries no privileged role.
		{name: "one member without a privileged role is enough", inherited: [][]cipherscale.Role{{adminRole}, {supportRole}}, want: false},
		{name: "every member inherits ADMIN", inherited: [][]cipherscale.Role{{adminRole}, {adminRole, supportRole}}, want: true},
		{name: "privileged.roles lists the support role", policy: plan.TrustPolicy{PrivilegedRoles: []string{support}},
			inherited: [][]cipherscale.Role{{supportRole}}, want: true},
		{name: "privileged.roles does not list ADMIN", policy: plan.TrustPolicy{PrivilegedRoles: []string{support}},
			inherited: [][]cipherscale.Role{{adminRole}}, want: false},
		{name: "privileged.groups lists it (another case)", policy: plan.TrustPolicy{PrivilegedGroups: []string{other, plan.NormalizeID(group)}},
			inherited: [][]cipherscale.Role{{}}, want: true},
		{name: "privileged.groups does not list it, whatever it carries", policy: plan.TrustPolicy{PrivilegedGroups: []string{other}},
			inherited: [][]cipherscale.Role{{adminRole}}, want: false},
		{name: "privileged.groups empty: no group is privileged, not even an unknown one", policy: plan.TrustPolicy{PrivilegedGroups: []string{}}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.policy.PrivilegedGroup(group, tc.inherited, tc.types); got != tc.want {
				t.Errorf("PrivilegedGroup = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestRefusedGroups(t *testing.T) {
	const (
		admins = "cccccccc-0000-4000-8000-000000000001"
		eng    = "cccccccc-0000-4000-8000-000000000002"
		ops    = "CCCCCCCC-0000-4000-8000-000000000003"
	)
	p := plan.TrustPolicy{Privileged: func(ns string) bool { return ns == "platform" }}
	privileged := func(id string) bool {
		return plan.NormalizeID(id) == admins || plan.NormalizeID(id) == plan.NormalizeID(ops)
	}
	list := func(ids ...string) *[]string { return &ids }
	tests := []struct {
		name    string
		ns      string
		spec    *[]string
		removed []string
		want    []string
	}{
		{name: "groups not managed, nothing removed", ns: "team-a", want: nil},
		{name: "an ordinary group", ns: "team-a", spec: list(eng), want: nil},
		{name: "a privileged group named", ns: "team-a", spec: list(eng, admins), want: []string{admins}},
		{name: "a privileged group taken away", ns: "team-a", spec: list(eng), removed: []string{ops}, want: []string{plan.NormalizeID(ops)}},
		{name: "named and taken away, once each", ns: "team-a", spec: list(admins, ops), removed: []string{ops}, want: []string{admins, plan.NormalizeID(ops)}},
		{name: "an ordinary group taken away", ns: "team-a", spec: list(), removed: []string{eng}, want: nil},
		{name: "a privileged namespace may", ns: "platform", spec: list(admins), removed: []string{ops}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, p.RefusedGroups(tc.ns, tc.spec, tc.removed, privileged)); diff != "" {
				t.Errorf("RefusedGroups (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMayActOnMember(t *testing.T) {
	p := plan.TrustPolicy{
		Adoption:   func(ns string) bool { return ns == "adopting" || ns == "platform" },
		Privileged: func(ns string) bool { return ns == "platform" },
	}
	tests := []struct {
		name string
		f    plan.MemberFacts
		want bool
	}{
		// A person its own namespace manages (a userRef, or the email of its own CipherscaleUser).
		{name: "own user, untrusted namespace", f: plan.MemberFacts{Namespace: "evil", TenantUsable: true, ManagedIn: "evil"}, want: true},
		{name: "own user, privileged group, untrusted namespace", f: plan.MemberFacts{Namespace: "evil", TenantUsable: true, ManagedIn: "evil", PrivilegedGroup: true}, want: false},
		{name: "own user, tenant not usable", f: plan.MemberFacts{Namespace: "evil", ManagedIn: "evil"}, want: false},
		// A person another namespace manages: only from a privileged namespace.
		{name: "another namespace's user, untrusted namespace", f: plan.MemberFacts{Namespace: "evil", TenantUsable: true, ManagedIn: "platform"}, want: false},
		{name: "another namespace's user, adopting namespace", f: plan.MemberFacts{Namespace: "adopting", TenantUsable: true, ManagedIn: "team-b"}, want: false},
		{name: "another namespace's user, privileged namespace", f: plan.MemberFacts{Namespace: "platform", TenantUsable: true, ManagedIn: "team-b"}, want: true},
		{name: "another namespace's user, privileged namespace, privileged group", f: plan.MemberFacts{Namespace: "platform", TenantUsable: true, ManagedIn: "team-b", PrivilegedGroup: true}, want: true},
		{name: "another namespace's user, privileged namespace, tenant not usable", f: plan.MemberFacts{Namespace: "platform", ManagedIn: "team-b"}, want: false},
		// An undeclared person (no CipherscaleUser): from a namespace that may adopt.
		{name: "undeclared person, untrusted namespace", f: plan.MemberFacts{Namespace: "evil", TenantUsable: true}, want: false},
		{name: "undeclared person, adopting namespace", f: plan.MemberFacts{Namespace: "adopting", TenantUsable: true}, want: true},
		{name: "undeclared person, adopting namespace, privileged group", f: plan.MemberFacts{Namespace: "adopting", TenantUsable: true, PrivilegedGroup: true}, want: false},
		{name: "undeclared person, adopting namespace, tenant not usable", f: plan.MemberFacts{Namespace: "adopting"}, want: false},
		{name: "undeclared person, privileged namespace", f: plan.MemberFacts{Namespace: "platform", TenantUsable: true, PrivilegedGroup: true}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.MayActOnMember(tc.f); got != tc.want {
				t.Errorf("MayActOnMember(%+v) = %t, want %t", tc.f, got, tc.want)
			}
		})
	}
	// A privileged namespace that may not adopt (a CipherscaleTenant whose own namespace is
	// privileged, another tenant's policy) still acts on anyone.
	onlyPrivileged := plan.TrustPolicy{Privileged: func(ns string) bool { return ns == "platform" }}
	if !onlyPrivileged.MayActOnMember(plan.MemberFacts{Namespace: "platform", TenantUsable: true}) {
		t.Errorf("a privileged namespace may not act on an undeclared person")
	}
	var zero plan.TrustPolicy
	if zero.MayActOnMember(plan.MemberFacts{Namespace: "x", TenantUsable: true}) || zero.MayActOnMember(plan.MemberFacts{Namespace: "x", TenantUsable: true, ManagedIn: "y"}) {
		t.Errorf("the zero policy lets a membership act on someone its namespace does not manage")
	}
}
