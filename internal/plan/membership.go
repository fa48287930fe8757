package plan

import (
	"sort"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// Source names an object that declares (user, group) pairs, such as "user/team-a/jane" or
// "membership/team-a/engineering".
type Source string

// PairFacts is everything the membership rule needs to know about one (user, group) pair.
// Objects being deleted declare nothing and make no scope authoritative: leave them out.
type PairFacts struct {
	// Present is true when the tenant user is in the group.
	Present bool
	// DeclaredBy lists the objects that declare the pair.
	DeclaredBy []Source
	// UserAuthoritative is true when the user's CipherscaleUser sets spec.groups.
	UserAuthoritative bool
	// GroupAuthoritative is true when the group has an Authoritative membership (the one that
	// owns the group, not a conflicting newer one).
	GroupAuthoritative bool
}

// Action is what to do with one pair.
type Action int

// Actions of the membership rule.
const (
	Keep Action = iota
	Add
	Remove
)

func (a Action) String() string {
	switch a {
	case Add:
		return "add"
	case Remove:
		return "remove"
	default:
		return "keep"
	}
}

// DecidePair is the membership rule. A pair is added when declared and missing; it is removed
// when it is present, lies in an authoritative scope, and nothing declares it. Everything else in
// the tenant is left alone.
func DecidePair(f PairFacts) Action {
	declared := len(f.DeclaredBy) > 0
	switch {
	case declared && !f.Present:
		return Add
	case !declared && f.Present && (f.UserAuthoritative || f.GroupAuthoritative):
		return Remove
	default:
		return Keep
	}
}

// DecideRelease is the rule for an object being deleted with deletionPolicy Delete: a pair it
// declared is removed when it is present and nothing else declares it. f describes the pair
// without the deleted object, and the result of DecidePair for the remaining declarations still
// holds: a pair others declare is kept.
func DecideRelease(f PairFacts, deletedDeclaredIt bool) Action {
	if deletedDeclaredIt && f.Present && len(f.DeclaredBy) == 0 {
		return Remove
	}
	if a := DecidePair(f); a == Remove {
		return Remove
	}
	return Keep
}

// Owner decides which of several objects claiming one key (an email, a group's authoritative
// scope) owns it: the oldest, with ties broken by name so that every controller agrees.
type Claim struct {
	// Created is the object's creation time as Unix nanoseconds.
	Created int64
	// Key is the object's namespace/name.
	Key string
}

// OwnerOf returns the index of the claim that owns the key, or -1 for no claims.
func OwnerOf(claims []Claim) int {
	best := -1
	for i, c := range claims {
		if best < 0 || c.Created < claims[best].Created ||
			(c.Created == claims[best].Created && c.Key < claims[best].Key) {
			best = i
		}
	}
	return best
}

// NormalizeID lower-cases a UUID so that ids compare equal whatever their case.
func NormalizeID(id string) string { return cipherscale.NormalizeID(id) }

// SortedSet returns the distinct normalized ids of ids, sorted.
func SortedSet(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		n := NormalizeID(id)
		if _, ok := seen[n]; ok || n == "" {
			continue
		}
		seen[n] = struct{}{}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
