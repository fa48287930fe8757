package plan_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// sources returns n declaring objects.
func sources(n int) []plan.Source {
	out := make([]plan.Source, 0, n)
	for i := range n {
		out = append(out, plan.Source(fmt.Sprintf("user/team-a/decl-%d", i)))
	}
	return out
}

// TestDecidePair is the membership rule of crd-api.md, written out for every combination of the
// facts it depends on. The expected actions are spelled out, not computed.
func TestDecidePair(t *testing.T) {
	const (
		keep   = plan.Keep
		add    = plan.Add
		remove = plan.Remove
	)
	tests := []struct {
		present  bool
		declared int // number of declaring objects
		userAuth bool
		grpAuth  bool
		want     plan.Action
	}{
		// Missing and nobody declares it: nothing to add, nothing to remove.
		{false, 0, false, false, keep},
		{false, 0, true, false, keep},
		{false, 0, false, true, keep},
		{false, 0, true, true, keep},
		// Missing and declared: added, whatever the scopes.
		{false, 1, false, false, add},
		{false, 1, true, false, add},
		{false, 1, false, true, add},
		{false, 1, true, true, add},
		{false, 2, false, false, add},
		{false, 2, true, false, add},
		{false, 2, false, true, add},
		{false, 2, true, true, add},
		// Present and nobody declares it: removed only inside an authoritative scope.
		{true, 0, false, false, keep},
		{true, 0, true, false, remove},
		{true, 0, false, true, remove},
		{true, 0, true, true, remove},
		// Present and declared: kept, whatever the scopes.
		{true, 1, false, false, keep},
		{true, 1, true, false, keep},
		{true, 1, false, true, keep},
		{true, 1, true, true, keep},
		{true, 2, false, false, keep},
		{true, 2, true, false, keep},
		{true, 2, false, true, keep},
		{true, 2, true, true, keep},
	}
	if len(tests) != 2*3*2*2 {
		t.Fatalf("the table has %d rows, want every one of the 24 combinations", len(tests))
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		name := fmt.Sprintf("present=%t/declared=%d/userAuth=%t/groupAuth=%t", tc.present, tc.declared, tc.userAuth, tc.grpAuth)
		if seen[name] {
			t.Fatalf("row %s appears twice", name)
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			f := plan.PairFacts{
				Present:            tc.present,
				DeclaredBy:         sources(tc.declared),
				UserAuthoritative:  tc.userAuth,
				GroupAuthoritative: tc.grpAuth,
			}
			if got := plan.DecidePair(f); got != tc.want {
				t.Errorf("DecidePair(%+v) = %v, want %v", f, got, tc.want)
			}
		})
	}
}

func TestDecidePairEmptyVersusNilDeclarations(t *testing.T) {
	// An empty, non-nil DeclaredBy declares nothing, exactly like nil.
	for _, decl := range [][]plan.Source{nil, {}} {
		f := plan.PairFacts{Present: true, DeclaredBy: decl, UserAuthoritative: true}
		if got := plan.DecidePair(f); got != plan.Remove {
			t.Errorf("DecidePair(%#v) = %v, want remove", f, got)
		}
	}
}

func TestActionString(t *testing.T) {
	tests := []struct {
		a    plan.Action
		want string
	}{
		{plan.Keep, "keep"},
		{plan.Add, "add"},
		{plan.Remove, "remove"},
		{plan.Action(42), "keep"},
	}
	for _, tc := range tests {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("Action(%d).String() = %q, want %q", int(tc.a), got, tc.want)
		}
	}
}

func TestDecideRelease(t *testing.T) {
	tests := []struct {
		name    string
		facts   plan.PairFacts // without the object being deleted
		deleted bool           // the deleted object declared the pair
		want    plan.Action
	}{
		{
			name:    "declared only by the deleted object, present: removed",
			facts:   plan.PairFacts{Present: true},
			deleted: true,
			want:    plan.Remove,
		},
		{
			name:    "declared only by the deleted object, present, inside an authoritative scope: removed",
			facts:   plan.PairFacts{Present: true, GroupAuthoritative: true},
			deleted: true,
			want:    plan.Remove,
		},
		{
			name:    "declared by the deleted object and another, present: kept",
			facts:   plan.PairFacts{Present: true, DeclaredBy: sources(1)},
			deleted: true,
			want:    plan.Keep,
		},
		{
			name:    "declared by the deleted object and two others, present, authoritative: kept",
			facts:   plan.PairFacts{Present: true, DeclaredBy: sources(2), UserAuthoritative: true, GroupAuthoritative: true},
			deleted: true,
			want:    plan.Keep,
		},
		{
			name:    "declared by the deleted object, already absent: nothing to do",
			facts:   plan.PairFacts{},
			deleted: true,
			want:    plan.Keep,
		},
		{
			name:    "declared by the deleted object and another, absent: a release never adds",
			facts:   plan.PairFacts{DeclaredBy: sources(1)},
			deleted: true,
			want:    plan.Keep,
		},
		{
			name:    "not declared by the deleted object, present, undeclared, authoritative: the rule removes it",
			facts:   plan.PairFacts{Present: true, UserAuthoritative: true},
			deleted: false,
			want:    plan.Remove,
		},
		{
			name:    "not declared by the deleted object, present, undeclared, no authoritative scope: kept",
			facts:   plan.PairFacts{Present: true},
			deleted: false,
			want:    plan.Keep,
		},
		{
			name:    "not declared by the deleted object, declared by another, absent: a release never adds",
			facts:   plan.PairFacts{DeclaredBy: sources(1), UserAuthoritative: true},
			deleted: false,
			want:    plan.Keep,
		},
		{
			name:    "not declared by anyone, absent: kept",
			facts:   plan.PairFacts{GroupAuthoritative: true},
			deleted: false,
			want:    plan.Keep,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := plan.DecideRelease(tc.facts, tc.deleted); got != tc.want {
				t.Errorf("DecideRelease(%+v, %t) = %v, want %v", tc.facts, tc.deleted, got, tc.want)
			}
		})
	}
}

func TestOwnerOf(t *testing.T) {
	tests := []struct {
		name   string
		claims []plan.Claim
		want   int
	}{
		{name: "nil", claims: nil, want: -1},
		{name: "empty", claims: []plan.Claim{}, want: -1},
		{name: "one", claims: []plan.Claim{{Created: 5, Key: "team-a/jane"}}, want: 0},
		{
			name:   "oldest first",
			claims: []plan.Claim{{Created: 1, Key: "team-b/jane"}, {Created: 2, Key: "team-a/jane"}},
			want:   0,
		},
		{
			name:   "oldest last, whatever the keys",
			claims: []plan.Claim{{Created: 9, Key: "team-a/jane"}, {Created: 7, Key: "team-a/janet"}, {Created: 3, Key: "team-z/jane"}},
			want:   2,
		},
		{
			name:   "tie broken by key, smaller key later",
			claims: []plan.Claim{{Created: 4, Key: "team-b/jane"}, {Created: 4, Key: "team-a/jane"}},
			want:   1,
		},
		{
			name:   "tie broken by key, smaller key first",
			claims: []plan.Claim{{Created: 4, Key: "team-a/jane"}, {Created: 4, Key: "team-b/jane"}},
			want:   0,
		},
		{
			name:   "a tie among the oldest only",
			claims: []plan.Claim{{Created: 8, Key: "a/a"}, {Created: 2, Key: "c/c"}, {Created: 2, Key: "b/b"}, {Created: 5, Key: "0/0"}},
			want:   2,
		},
		{
			name:   "negative and zero times",
			claims: []plan.Claim{{Created: 0, Key: "a/x"}, {Created: -1, Key: "b/x"}},
			want:   1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := plan.OwnerOf(tc.claims); got != tc.want {
				t.Errorf("OwnerOf(%+v) = %d, want %d", tc.claims, got, tc.want)
			}
		})
	}
}

// TestOwnerOfOrderIndependent checks that every controller agrees on the owner whatever order it
// lists the claims in.
func TestOwnerOfOrderIndependent(t *testing.T) {
	claims := []plan.Claim{{Created: 3, Key: "c/x"}, {Created: 1, Key: "b/x"}, {Created: 1, Key: "a/x"}, {Created: 2, Key: "0/x"}}
	want := plan.Claim{Created: 1, Key: "a/x"}
	perm := func(p []int) []plan.Claim {
		out := make([]plan.Claim, len(p))
		for i, j := range p {
			out[i] = claims[j]
		}
		return out
	}
	for _, p := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {2, 3, 0, 1}, {0, 2, 1, 3}} {
		c := perm(p)
		if got := c[plan.OwnerOf(c)]; got != want {
			t.Errorf("OwnerOf(%+v) picked %+v, want %+v", c, got, want)
		}
	}
}

func TestNormalizeID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"550E8400-E29B-41D4-A716-446655440000", "550e8400-e29b-41d4-a716-446655440000"},
		{"  550e8400-E29B-41d4-a716-446655440000\t", "550e8400-e29b-41d4-a716-446655440000"},
		{"   ", ""},
	}
	for _, tc := range tests {
		if got := plan.NormalizeID(tc.in); got != tc.want {
			t.Errorf("NormalizeID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSortedSet(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "nil", in: nil, want: []string{}},
		{name: "empty", in: []string{}, want: []string{}},
		{name: "only blanks", in: []string{"", " ", "\t"}, want: []string{}},
		{name: "sorted and distinct", in: []string{"b", "a", "c"}, want: []string{"a", "b", "c"}},
		{name: "duplicates", in: []string{"b", "a", "b", "a"}, want: []string{"a", "b"}},
		{
			name: "case and space insensitive",
			in:   []string{"ABC-1", "abc-1", " Abc-1 ", "def-2", "DEF-2"},
			want: []string{"abc-1", "def-2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := plan.SortedSet(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("SortedSet(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestSortedSetDoesNotModifyItsInput(t *testing.T) {
	in := []string{"B", "a", "B"}
	plan.SortedSet(in)
	if diff := cmp.Diff([]string{"B", "a", "B"}, in); diff != "" {
		t.Errorf("SortedSet modified its input (-want +got):\n%s", diff)
	}
}
