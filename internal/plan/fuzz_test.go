package plan_test

import (
	"slices"
	"sort"
	"strings"
	"testing"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// The fuzz targets check invariants of the pure plan on random input. Their seed corpora live in
// testdata/fuzz/<target>/ and run with every plain `go test`; explore further with, for example,
//
//	go test -run='^$' -fuzz='^FuzzDiff$' -fuzztime=30s ./internal/plan/

// splitIDs turns a comma-separated fuzz input into a list of ids ("" is one blank id).
func splitIDs(s string) []string { return strings.Split(s, ",") }

// normSet is the set of ids as the plan compares them: normalized, blanks dropped.
func normSet(ids []string) map[string]bool {
	s := map[string]bool{}
	for _, id := range ids {
		if n := plan.NormalizeID(id); n != "" {
			s[n] = true
		}
	}
	return s
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// swapASCIICase changes the case of ASCII letters only, which the plan must ignore.
func swapASCIICase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

func swapAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = swapASCIICase(id)
	}
	return out
}

// checkIDList reports a result list that is not sorted, distinct, normalized and without blanks.
func checkIDList(t *testing.T, what string, l []string) {
	t.Helper()
	for i, id := range l {
		if id == "" || plan.NormalizeID(id) != id {
			t.Errorf("%s[%d] = %q is not a normalized id", what, i, id)
		}
		if i > 0 && l[i-1] >= id {
			t.Errorf("%s is not sorted and distinct: %q", what, l)
		}
	}
}

func FuzzDiff(f *testing.F) {
	f.Add("", "")
	f.Add("a,b", "b,c")
	f.Add("550E8400-E29B-41D4-A716-446655440000", "550e8400-e29b-41d4-a716-446655440000")
	f.Add("x,x,X, x ", "X,y,Y")
	f.Add(",,", "a,,b")
	f.Add("", "11111111-aaaa-4aaa-8aaa-000000000001,11111111-aaaa-4aaa-8aaa-000000000002")
	f.Fuzz(func(t *testing.T, wantS, haveS string) {
		want, have := splitIDs(wantS), splitIDs(haveS)
		added, removed := plan.Diff(want, have)
		checkIDList(t, "added", added)
		checkIDList(t, "removed", removed)

		w, h := normSet(want), normSet(have)
		for _, id := range added {
			if h[id] {
				t.Errorf("added %q, which have already holds", id)
			}
			if !w[id] {
				t.Errorf("added %q, which want does not name", id)
			}
		}
		for _, id := range removed {
			if !h[id] {
				t.Errorf("removed %q, which have does not hold", id)
			}
			if w[id] {
				t.Errorf("removed %q, which want names", id)
			}
		}
		// Applying the diff to have yields want.
		result := map[string]bool{}
		for id := range h {
			result[id] = true
		}
		for _, id := range added {
			result[id] = true
		}
		for _, id := range removed {
			delete(result, id)
		}
		if got, exp := keys(result), keys(w); !slices.Equal(got, exp) {
			t.Errorf("have %q + %q - %q = %q, want %q", keys(h), added, removed, got, exp)
		}
		// ASCII case is ignored on either side.
		a2, r2 := plan.Diff(swapAll(want), have)
		a3, r3 := plan.Diff(want, swapAll(have))
		if !slices.Equal(a2, added) || !slices.Equal(r2, removed) || !slices.Equal(a3, added) || !slices.Equal(r3, removed) {
			t.Errorf("the case of the ids changed the diff: %q/%q, %q/%q, %q/%q", added, removed, a2, r2, a3, r3)
		}
		// The diff the other way round swaps the two lists; a list against itself is no diff.
		back, forth := plan.Diff(have, want)
		if !slices.Equal(back, removed) || !slices.Equal(forth, added) {
			t.Errorf("Diff(have, want) = %q, %q; want %q, %q", back, forth, removed, added)
		}
		if a, r := plan.Diff(want, want); len(a) != 0 || len(r) != 0 {
			t.Errorf("Diff(want, want) = %q, %q; want nothing", a, r)
		}
	})
}

func FuzzDecidePair(f *testing.F) {
	f.Add(false, 0, false, false, false)
	f.Add(true, 0, true, false, true)
	f.Add(true, 0, false, true, false)
	f.Add(false, 2, true, true, true)
	f.Add(true, 1, false, false, true)
	f.Fuzz(func(t *testing.T, present bool, declared int, userAuth, groupAuth, deletedDeclaredIt bool) {
		n := declared % 5
		if n < 0 {
			n = -n
		}
		decl := sources(n)
		facts := plan.PairFacts{Present: present, DeclaredBy: decl, UserAuthoritative: userAuth, GroupAuthoritative: groupAuth}
		a := plan.DecidePair(facts)
		switch a {
		case plan.Keep, plan.Add, plan.Remove:
		default:
			t.Fatalf("DecidePair(%+v) = %d, not an action", facts, a)
		}
		if a == plan.Add && n == 0 {
			t.Errorf("DecidePair(%+v) adds a pair nothing declares", facts)
		}
		if a == plan.Add && present {
			t.Errorf("DecidePair(%+v) adds a pair that is present", facts)
		}
		if a == plan.Remove && n > 0 {
			t.Errorf("DecidePair(%+v) removes a declared pair", facts)
		}
		if a == plan.Remove && !userAuth && !groupAuth {
			t.Errorf("DecidePair(%+v) removes a pair outside every authoritative scope", facts)
		}
		if a == plan.Remove && !present {
			t.Errorf("DecidePair(%+v) removes an absent pair", facts)
		}
		// Declared and missing is always added; a declared pair that is present is always kept.
		if n > 0 && !present && a != plan.Add {
			t.Errorf("DecidePair(%+v) = %v, want add", facts, a)
		}
		if n > 0 && present && a != plan.Keep {
			t.Errorf("DecidePair(%+v) = %v, want keep", facts, a)
		}

		r := plan.DecideRelease(facts, deletedDeclaredIt)
		if r == plan.Add {
			t.Errorf("DecideRelease(%+v, %t) adds a pair", facts, deletedDeclaredIt)
		}
		if r == plan.Remove && (!present || n > 0) {
			t.Errorf("DecideRelease(%+v, %t) removes a pair that is absent or still declared", facts, deletedDeclaredIt)
		}
		if r == plan.Remove && !deletedDeclaredIt && !userAuth && !groupAuth {
			t.Errorf("DecideRelease(%+v, %t) removes a pair the deleted object never declared, outside every authoritative scope", facts, deletedDeclaredIt)
		}
		if a == plan.Remove && r != plan.Remove {
			t.Errorf("DecideRelease(%+v, %t) = %v, but the rule itself removes the pair", facts, deletedDeclaredIt, r)
		}
	})
}

// userState is what applying a plan can change in the tenant.
type userState struct {
	inactive           bool
	first, last, image string
	roles, groups      []string // normalized, sorted
}

func stateOf(u *cipherscale.User) userState {
	return userState{
		inactive: u.Status.Normalized() == cipherscale.StatusInactive,
		first:    u.FirstName, last: u.LastName, image: u.Image,
		roles:  keys(normSet(u.RoleIDs())),
		groups: keys(normSet(u.GroupIDs())),
	}
}

func (s userState) equal(o userState) bool {
	return s.inactive == o.inactive && s.first == o.first && s.last == o.last && s.image == o.image &&
		slices.Equal(s.roles, o.roles) && slices.Equal(s.groups, o.groups)
}

// apply makes the calls of p on a copy of live, as the API would.
func apply(live *cipherscale.User, p plan.UserPlan) *cipherscale.User {
	u := *live
	if p.Reactivate {
		u.Status = cipherscale.StatusActive
	}
	if p.Profile != nil {
		if p.Profile.FirstName != nil {
			u.FirstName = *p.Profile.FirstName
		}
		if p.Profile.LastName != nil {
			u.LastName = *p.Profile.LastName
		}
		if p.Profile.Image != nil {
			u.Image = *p.Profile.Image
		}
	}
	roles := normSet(live.RoleIDs())
	if p.Roles != nil {
		for _, id := range p.Roles.AddedRoles {
			roles[plan.NormalizeID(id)] = true
		}
		for _, id := range p.Roles.RemovedRoles {
			delete(roles, plan.NormalizeID(id))
		}
	}
	u.Roles = nil
	for _, id := range keys(roles) {
		u.Roles = append(u.Roles, cipherscale.Role{ID: id})
	}
	groups := normSet(live.GroupIDs())
	for _, id := range p.AddGroups {
		groups[plan.NormalizeID(id)] = true
	}
	for _, id := range p.RemoveGroups {
		delete(groups, plan.NormalizeID(id))
	}
	u.Groups = nil
	for _, id := range keys(groups) {
		u.Groups = append(u.Groups, cipherscale.Group{ID: id})
	}
	if p.Deactivate {
		u.Status = cipherscale.StatusInactive
	}
	return &u
}

func optional(s string, set bool) *string {
	if !set {
		return nil
	}
	return &s
}

func FuzzPlanUser(f *testing.F) {
	// spec: first, firstSet, last, lastSet, image, imageSet, active (0 unset, 1 true, 2 false),
	// roles, rolesSet; live: first, last, image, status, isOwner, roles, groups; the membership
	// rule's candidates: groupAdd, groupRemove.
	f.Add("Jane", true, "Smith", true, "", false, 0, "", false,
		"Jane", "Smith", "", "active", false, "r1", "g1", "", "")
	f.Add("Janet", true, "", true, "https://example.com/a.jpg", true, 2, "r1,R2", true,
		"Jane", "Smith", "", "pending", false, "r2,r3", "g1,g2", "g3", "g1")
	f.Add("", false, "", false, "", false, 2, "", true,
		"", "", "", "active", true, "r1", "", "", "")
	f.Add("", false, "", false, "", false, 1, "", false,
		"", "", "", "INACTIVE", false, "", "", "G1", "")
	f.Add("x", true, "y", true, "z", true, 2, " R1 ,r1,", true,
		"x", "y", "z", "Suspended", true, "r1", "g1", "g1", "G1")
	f.Fuzz(func(t *testing.T,
		sFirst string, sFirstSet bool, sLast string, sLastSet bool, sImage string, sImageSet bool,
		active int, sRoles string, sRolesSet bool,
		lFirst, lLast, lImage, lStatus string, isOwner bool, lRoles, lGroups string,
		groupAdd, groupRemove string,
	) {
		spec := &iamv1alpha1.CipherscaleUserSpec{
			Email:     "fuzz@example.com",
			FirstName: optional(sFirst, sFirstSet),
			LastName:  optional(sLast, sLastSet),
			Image:     optional(sImage, sImageSet),
		}
		switch active % 3 {
		case 1, -1:
			spec.Active = ptr(true)
		case 2, -2:
			spec.Active = ptr(false)
		}
		if sRolesSet {
			r := splitIDs(sRoles)
			spec.Roles = &r
		}
		live := &cipherscale.User{
			ID: "33333333-cccc-4ccc-8ccc-00000000000f", Email: "fuzz@example.com",
			Status: cipherscale.Status(lStatus), IsOwner: isOwner,
			FirstName: lFirst, LastName: lLast, Image: lImage,
		}
		for _, id := range splitIDs(lRoles) {
			live.Roles = append(live.Roles, cipherscale.Role{ID: id})
		}
		for _, id := range splitIDs(lGroups) {
			live.Groups = append(live.Groups, cipherscale.Group{ID: id})
		}
		// The membership rule adds only missing pairs and removes only present ones.
		has := normSet(live.GroupIDs())
		var add, remove []string
		for _, id := range splitIDs(groupAdd) {
			if !has[plan.NormalizeID(id)] {
				add = append(add, id)
			}
		}
		for _, id := range splitIDs(groupRemove) {
			if has[plan.NormalizeID(id)] {
				remove = append(remove, id)
			}
		}

		p := plan.PlanUser(spec, live, add, remove)

		if live.IsOwner && (!p.Empty() || !p.OwnerProtected) {
			t.Fatalf("the plan writes to the tenant owner: %+v", p)
		}
		if p.Deactivate && p.Reactivate {
			t.Errorf("the plan both reactivates and deactivates: %+v", p)
		}
		known := live.Status.Known()
		if !known && (p.Deactivate || p.Reactivate) {
			t.Errorf("status %q is unknown, yet the plan acts on it: %+v", live.Status, p)
		}
		if !known && p.UnknownStatus != live.Status {
			t.Errorf("status %q is unknown, but UnknownStatus = %q", live.Status, p.UnknownStatus)
		}
		if known && p.UnknownStatus != "" {
			t.Errorf("status %q is known, but UnknownStatus = %q", live.Status, p.UnknownStatus)
		}
		if p.OwnerProtected != live.IsOwner {
			t.Errorf("OwnerProtected = %t for a user whose isOwner is %t: %+v", p.OwnerProtected, live.IsOwner, p)
		}
		if p.OwnerProtected && (p.Withheld == "") != plan.PlanUser(spec, notOwner(live), add, remove).Empty() {
			t.Errorf("Withheld = %q does not say what the owner's spec would change: %+v", p.Withheld, p)
		}
		if s := p.String(); strings.Contains(s, "@") {
			t.Errorf("String() = %q holds an email", s)
		}

		after := apply(live, p)
		changed := !stateOf(live).equal(stateOf(after))
		if p.Empty() == changed {
			t.Errorf("Empty() = %t, but applying the plan changes the user: %t\nplan: %s %+v\nbefore: %+v\nafter:  %+v",
				p.Empty(), changed, p, p, stateOf(live), stateOf(after))
		}
		// One pass converges: planning against the result makes no further call.
		if again := plan.PlanUser(spec, after, nil, nil); !again.Empty() {
			t.Errorf("a second pass still has work: %s (%+v)", again, again)
		}
	})
}

func notOwner(u *cipherscale.User) *cipherscale.User {
	c := *u
	c.IsOwner = false
	return &c
}
