package plan_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

func TestMatchExclude(t *testing.T) {
	tests := []struct {
		pattern, email string
		want           bool
	}{
		{"breakglass@company.com", "breakglass@company.com", true},
		{"breakglass@company.com", "BreakGlass@Company.COM", true},
		{"BREAKGLASS@company.com", " breakglass@company.com ", true},
		{"breakglass@company.com", "breakglass@company.com.evil.io", false},
		{"breakglass@company.com", "x.breakglass@company.com", false},
		{"*@partner.com", "alice@partner.com", true},
		{"*@partner.com", "Alice@PARTNER.com", true},
		{"*@partner.com", "alice@sub.partner.com", false},
		{"*@partner.com", "alice@partner.com.au", false},
		{"*@partner.com", "alice@notpartner.com", false},
		{"*@*.partner.com", "alice@sub.partner.com", true},
		{"*@*.partner.com", "alice@partner.com", false},
		{"ops-*@company.com", "ops-oncall@company.com", true},
		{"ops-*@company.com", "ops-@company.com", true}, // * matches nothing too
		{"ops-*@company.com", "dev-ops-x@company.com", false},
		{"*a*b*@x.io", "aab@x.io", true},
		{"*a*b*@x.io", "ba@x.io", false},
		{"a.b@x.io", "axb@x.io", false}, // "." is not a wildcard
		{"*@*", "anyone@anywhere", true},
	}
	for _, tt := range tests {
		if got := plan.MatchExclude(tt.pattern, tt.email); got != tt.want {
			t.Errorf("MatchExclude(%q, %q) = %v, want %v", tt.pattern, tt.email, got, tt.want)
		}
	}
}

func TestValidateExcludePattern(t *testing.T) {
	valid := []string{"breakglass@company.com", "*@partner.com", "*@*.partner.com", "ops-*@x.io", "*@*"}
	invalid := []string{"", "partner.com", "*", "@partner.com", "alice@", "a@b@c", "a b@c.com",
		"alice@partner.com\n", "a?@x.io", "[ab]@x.io"}
	for _, p := range valid {
		if err := plan.ValidateExcludePattern(p); err != nil {
			t.Errorf("ValidateExcludePattern(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range invalid {
		if err := plan.ValidateExcludePattern(p); err == nil {
			t.Errorf("ValidateExcludePattern(%q) = nil, want an error", p)
		}
	}
}

var undeclaredNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// undeclaredAgo returns the time d before undeclaredNow.
func undeclaredAgo(d time.Duration) time.Time { return undeclaredNow.Add(-d) }

func undeclaredUser(id, email string, status cipherscale.Status) cipherscale.User {
	return cipherscale.User{ID: id, Email: email, Status: status}
}

// undeclaredTenant: the owner, one declared user, and undeclared users of every kind.
func undeclaredTenant() []cipherscale.User {
	owner := undeclaredUser("ID-OWNER", "Owner@Company.com", cipherscale.StatusActive)
	owner.IsOwner = true
	ownerByRole := undeclaredUser("id-owner2", "second@company.com", cipherscale.StatusActive)
	ownerByRole.Roles = cipherscale.RoleList{{ID: "r", Type: "owner"}}
	return []cipherscale.User{
		owner,
		undeclaredUser("id-alice", "Alice@Company.com", cipherscale.StatusActive), // declared as alice@company.com
		undeclaredUser("id-bob", "bob@company.com", cipherscale.StatusActive),
		undeclaredUser("id-carol", "carol@company.com", cipherscale.StatusInactive),
		undeclaredUser("id-dave", "Dave@Partner.com", cipherscale.StatusActive), // excluded
		undeclaredUser("id-erin", "erin@company.com", cipherscale.StatusPending),
		undeclaredUser("id-frank", "frank@company.com", "Suspended"), // a status this operator does not know
		ownerByRole,
	}
}

var allUndeclared = []string{"bob@company.com", "carol@company.com", "dave@partner.com",
	"erin@company.com", "frank@company.com", "owner@company.com", "second@company.com"}

func undeclaredSummary(emails ...string) *plan.UndeclaredSummary {
	return &plan.UndeclaredSummary{Count: len(emails), Emails: emails}
}

// TestPlanUndeclared: the decision for each policy and each state of the grace period. The
// expected plans are written out.
func TestPlanUndeclared(t *testing.T) {
	const grace = 24 * time.Hour
	declared := []string{"alice@company.com", "ALICE@company.com", "nobody@company.com"}
	exclude := []string{"*@partner.com"}
	seen := func(kv ...any) map[string]time.Time {
		m := map[string]time.Time{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(time.Time)
		}
		return m
	}
	allPast := seen("id-bob", undeclaredAgo(25*time.Hour), "id-carol", undeclaredAgo(30*time.Hour),
		"id-erin", undeclaredAgo(25*time.Hour), "id-frank", undeclaredAgo(48*time.Hour))
	tests := []struct {
		name      string
		policy    plan.UndeclaredPolicy
		grace     time.Duration
		declared  []string
		firstSeen map[string]time.Time
		want      plan.UndeclaredPlan
	}{{
		name: "empty policy is Ignore: nothing reported, nothing tracked",
		want: plan.UndeclaredPlan{Declared: 1, FirstSeen: seen()},
	}, {
		name:      "Ignore forgets the record",
		policy:    plan.UndeclaredIgnore,
		firstSeen: allPast,
		want:      plan.UndeclaredPlan{Declared: 1, FirstSeen: seen()},
	}, {
		name:   "Report counts everyone undeclared, the owner and excluded included, and acts on nobody",
		policy: plan.UndeclaredReport,
		want:   plan.UndeclaredPlan{Declared: 1, Report: undeclaredSummary(allUndeclared...), FirstSeen: seen()},
	}, {
		name:   "Deactivate, first sight: everyone open to action starts the grace period",
		policy: plan.UndeclaredDeactivate,
		want: plan.UndeclaredPlan{Declared: 1, Report: undeclaredSummary(allUndeclared...),
			FirstSeen: seen("id-bob", undeclaredNow, "id-carol", undeclaredNow, "id-erin", undeclaredNow,
				"id-frank", undeclaredNow),
			Protected: 3, InGrace: 4, NextDue: grace},
	}, {
		name:      "Deactivate past the grace period: active and pending users, oldest first",
		policy:    plan.UndeclaredDeactivate,
		firstSeen: allPast,
		want: plan.UndeclaredPlan{Declared: 1, Report: undeclaredSummary(allUndeclared...), FirstSeen: allPast,
			Deactivate: []string{"id-bob", "id-erin"}, Protected: 3},
	}, {
		name:      "Delete past the grace period: inactive and unknown too, the longest undeclared first",
		policy:    plan.UndeclaredDelete,
		firstSeen: allPast,
		want: plan.UndeclaredPlan{Declared: 1, Report: undeclaredSummary(allUndeclared...), FirstSeen: allPast,
			Delete: []string{"id-frank", "id-carol", "id-bob", "id-erin"}, Protected: 3},
	}, {
		name:   "the grace period ends exactly grace after first sight",
		policy: plan.UndeclaredDelete,
		firstSeen: seen("id-bob", undeclaredAgo(grace), "id-carol", undeclaredAgo(grace-time.Second),
			"id-erin", undeclaredAgo(time.Hour), "id-frank", undeclaredNow),
		want: plan.UndeclaredPlan{Declared: 1, Report: undeclaredSummary(allUndeclared...),
			FirstSeen: seen("id-bob", undeclaredAgo(grace), "id-carol", undeclaredAgo(grace-time.Second),
				"id-erin", undeclaredAgo(time.Hour), "id-frank", undeclaredNow),
			Delete: []string{"id-bob"}, Protected: 3, InGrace: 3, NextDue: time.Second},
	}, {
		name:     "a user declared again leaves the record; so do users gone, excluded or the owner",
		policy:   plan.UndeclaredDelete,
		declared: []string{"alice@company.com", " BOB@company.com"},
		firstSeen: seen("id-bob", undeclaredAgo(48*time.Hour), "id-gone", undeclaredAgo(48*time.Hour),
			"id-dave", undeclaredAgo(48*time.Hour), "id-owner", undeclaredAgo(48*time.Hour), "id-carol", undeclaredAgo(48*time.Hour)),
		want: plan.UndeclaredPlan{Declared: 2,
			Report: undeclaredSummary("carol@company.com", "dave@partner.com", "erin@company.com",
				"frank@company.com", "owner@company.com", "second@company.com"),
			FirstSeen: seen("id-carol", undeclaredAgo(48*time.Hour), "id-erin", undeclaredNow, "id-frank", undeclaredNow),
			Delete:    []string{"id-carol"}, Protected: 3, InGrace: 2, NextDue: grace},
	}, {
		name:      "a first sight in the future (a clock moved back) restarts at now",
		policy:    plan.UndeclaredDeactivate,
		firstSeen: seen("id-bob", undeclaredNow.Add(time.Hour)),
		want: plan.UndeclaredPlan{Declared: 1, Report: undeclaredSummary(allUndeclared...),
			FirstSeen: seen("id-bob", undeclaredNow, "id-carol", undeclaredNow, "id-erin", undeclaredNow,
				"id-frank", undeclaredNow),
			Protected: 3, InGrace: 4, NextDue: grace},
	}, {
		name:   "no grace period: due at first sight",
		policy: plan.UndeclaredDeactivate,
		grace:  -1, // stands for 0 in this table
		want: plan.UndeclaredPlan{Declared: 1, Report: undeclaredSummary(allUndeclared...),
			FirstSeen: seen("id-bob", undeclaredNow, "id-carol", undeclaredNow, "id-erin", undeclaredNow,
				"id-frank", undeclaredNow),
			Deactivate: []string{"id-bob", "id-erin"}, Protected: 3},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grace
			switch {
			case tt.grace < 0:
				g = 0
			case tt.grace > 0:
				g = tt.grace
			}
			d := declared
			if tt.declared != nil {
				d = tt.declared
			}
			in := plan.UndeclaredInput{Users: undeclaredTenant(), Declared: d, Exclude: exclude, Policy: tt.policy,
				GracePeriod: g, FirstSeen: tt.firstSeen, Now: undeclaredNow}
			var before map[string]time.Time
			if tt.firstSeen != nil {
				before = maps.Clone(tt.firstSeen)
			}
			got, err := plan.PlanUndeclared(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PlanUndeclared (-want +got):\n%s", diff)
			}
			if tt.firstSeen != nil && !cmp.Equal(before, tt.firstSeen) {
				t.Error("PlanUndeclared modified the caller's record")
			}
			if got.Empty() != (len(tt.want.Deactivate)+len(tt.want.Delete) == 0) {
				t.Errorf("Empty() = %v for %s", got.Empty(), got)
			}
			if s := got.String(); strings.Contains(s, "@") {
				t.Errorf("String() names an email: %s", s)
			}
		})
	}
}

func TestPlanUndeclaredErrors(t *testing.T) {
	base := plan.UndeclaredInput{Users: undeclaredTenant(), Policy: plan.UndeclaredDelete, Now: undeclaredNow}
	tests := []struct {
		name   string
		modify func(*plan.UndeclaredInput)
		want   string
	}{
		{"unknown policy", func(in *plan.UndeclaredInput) { in.Policy = "Purge" }, `policy "Purge"`},
		{"negative grace", func(in *plan.UndeclaredInput) { in.GracePeriod = -time.Second }, "negative"},
		{"invalid pattern", func(in *plan.UndeclaredInput) { in.Exclude = []string{"ok@x.io", "partner.com"} },
			`"partner.com"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.modify(&in)
			got, err := plan.PlanUndeclared(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %s", err, tt.want)
			}
			if !got.Empty() || got.Report != nil {
				t.Errorf("an invalid input decided something: %s", got)
			}
		})
	}
}

// TestPlanUndeclared500 is the tenant: 500 users of which 120 are declared (by objects
// and by email members, in other cases and with duplicates), listed in a random order.
// Declared: u000..u149 except every fifth. Undeclared: u000, u005, ... u145 (30) and u150..u499
// (350), u000 being the owner and u400..u499 at partner.com.
func TestPlanUndeclared500(t *testing.T) {
	var users []cipherscale.User
	var objects, members []string
	for i := range 500 {
		domain := "example.com"
		if i >= 400 {
			domain = "partner.com"
		}
		email := fmt.Sprintf("u%03d@%s", i, domain)
		u := undeclaredUser(fmt.Sprintf("id-%03d", i), email, cipherscale.StatusActive)
		if i%3 == 0 {
			u.Email = strings.ToUpper(email)
		}
		u.IsOwner = i == 0
		users = append(users, u)
		if i < 150 && i%5 != 0 {
			switch i % 3 {
			case 0:
				objects = append(objects, email)
			case 1:
				members = append(members, strings.ToUpper(email))
			default:
				objects = append(objects, email)
				members = append(members, email) // declared twice
			}
		}
	}
	rnd := rand.New(rand.NewPCG(12, 500))
	rnd.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	wantEmails := []string{
		"u000@example.com", "u005@example.com", "u010@example.com", "u015@example.com",
		"u020@example.com", "u025@example.com", "u030@example.com", "u035@example.com",
		"u040@example.com", "u045@example.com", "u050@example.com", "u055@example.com",
		"u060@example.com", "u065@example.com", "u070@example.com", "u075@example.com",
		"u080@example.com", "u085@example.com", "u090@example.com", "u095@example.com",
	}
	in := plan.UndeclaredInput{Users: users, Declared: append(objects, members...),
		Exclude: []string{"*@PARTNER.com"}, Policy: plan.UndeclaredReport, GracePeriod: 24 * time.Hour,
		Now: undeclaredNow}

	got, err := plan.PlanUndeclared(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Declared != 120 || got.Report == nil || got.Report.Count != 380 {
		t.Fatalf("Report: %s; want declared 120, undeclared 380", got)
	}
	if diff := cmp.Diff(wantEmails, got.Report.Emails); diff != "" {
		t.Errorf("emails (-want +got):\n%s", diff)
	}
	if !got.Empty() || len(got.FirstSeen) != 0 || got.Protected != 0 {
		t.Errorf("Report acted or tracked: %s, %d tracked", got, len(got.FirstSeen))
	}

	// The same tenant under Delete with no grace period: the same report; every undeclared user
	// but the owner and the 100 partners deleted.
	in.Policy, in.GracePeriod = plan.UndeclaredDelete, 0
	del, err := plan.PlanUndeclared(in)
	if err != nil {
		t.Fatal(err)
	}
	if del.Report.Count != 380 || !cmp.Equal(del.Report.Emails, wantEmails) {
		t.Errorf("Delete reported %d undeclared, emails %v", del.Report.Count, del.Report.Emails)
	}
	if len(del.Delete) != 279 || del.Protected != 101 || len(del.FirstSeen) != 279 {
		t.Fatalf("Delete: %s, %d tracked; want 279 deleted, 101 protected", del, len(del.FirstSeen))
	}
	for i, id := range del.Delete {
		var n int
		if _, err := fmt.Sscanf(id, "id-%03d", &n); err != nil || n == 0 || n >= 400 || (n < 150 && n%5 != 0) {
			t.Errorf("deletes %s, which is declared, the owner or excluded", id)
		}
		if i > 0 && del.Delete[i-1] >= id {
			t.Errorf("deletions not in order: %s before %s", del.Delete[i-1], id)
		}
	}
}
