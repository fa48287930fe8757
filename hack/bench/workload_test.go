package main

import (
	"fmt"
	"testing"
)

// The bound for N=200, worked out by hand from the workload's description: 102 seeded users
// (2 list pages); 100 new users (1 create, 100 profile writes, 100 role patches); 100 adopted in
// four variants of 25 (variant 1: profile; 2: roles and groups; 3: profile, roles, groups and a
// removal from Legacy); block 0 and block 1 each add two adopted userRef members that lack only
// the Team group, and one unmanaged email member; user 109 sits undeclared in Team 1
// (Authoritative) and must leave.
func TestBound(t *testing.T) {
	id := ids{role: "r", legacyRole: "lr", group: "g", legacyGroup: "lg", teams: []string{"t0", "t1"}}
	w := newWorkload(200, id)
	got := w.bound()
	want := bound{listPages: 2, creates: 1, newUsers: 100, profileWrites: 150, rolePatches: 150,
		groupAdds: 56, groupRemoves: 26, adopted: 100, adoptedClean: 23}
	if got != want {
		t.Fatalf("bound(200) = %+v, want %+v", got, want)
	}
	if got.total() != 385 {
		t.Fatalf("total = %d, want 385", got.total())
	}
	if len(w.memberships) != 2 || len(w.seeds) != 102 {
		t.Fatalf("%d memberships and %d seeds, want 2 and 102", len(w.memberships), len(w.seeds))
	}
}

func TestBoundScales(t *testing.T) {
	for _, n := range []int{2000, 10000} {
		teams := make([]string, blocks(n))
		for k := range teams {
			teams[k] = fmt.Sprintf("t%d", k)
		}
		b := newWorkload(n, ids{role: "r", legacyRole: "lr", group: "g", legacyGroup: "lg", teams: teams}).bound()
		// Per block of 100 users: 75 profile writes (50 new, 25 adopted), 75 role patches, 28
		// group adds (25 adopted, 2 userRef members, 1 email member), 13 removals (12.5 Legacy,
		// 0.5 strays); plus one create per 200 users and one read of the seeded tenant.
		if want := n/100*(75+75+28+13) + n/200 + (n/2+n/100+99)/100; b.total() != want {
			t.Errorf("bound(%d) = %d (%s), want %d", n, b.total(), b.formula(), want)
		}
	}
}

func TestListPages(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{0, 1}, {100, 1}, {101, 2}, {199, 2}, {200, 3}, {2020, 21}, {10100, 103}} {
		if got := listPages(tt.n); got != tt.want {
			t.Errorf("listPages(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}
