package onboarding

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// hashLen is how many hex digits of the email's SHA-256 end every derived name.
	hashLen = 6
	// maxNameLen keeps names valid as DNS-1123 labels too (63), not only as subdomains (253),
	// so that tools that put them in labels accept them.
	maxNameLen = 63
)

// sanitize turns s into lower-case [a-z0-9] runs joined by single dashes.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

func hashOf(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// withHash builds base-hash within maxNameLen, base cut at a dash-free end.
func withHash(base, hash, fallback string) string {
	if base == "" {
		base = fallback
	}
	if keep := maxNameLen - len(hash) - 1; len(base) > keep {
		base = strings.TrimRight(base[:keep], "-")
	}
	return base + "-" + hash
}

// UserName derives the object name of the tenant user with this email: the email's letters and
// digits, lower-cased and joined by dashes, then a dash and a short hash of the email exactly as
// written. The hash is always there, so a name depends on its email alone (not on which other
// users exist), and emails that differ only in case or punctuation get different names.
// The name is a valid DNS-1123 label (hence subdomain) of at most 63 characters.
func UserName(email string) string {
	return withHash(sanitize(email), hashOf(email, hashLen), "user")
}

// GroupName derives the object name of a group's membership from the group's name and id.
func GroupName(groupName, groupID string) string {
	return withHash(sanitize(groupName), hashOf(strings.ToLower(groupID), hashLen), "group")
}

// UserNames derives the names of every email at once and guarantees they are distinct: in the
// (astronomically unlikely) case that two derived names are equal, those emails get a longer
// hash until they differ. The result depends only on the set of emails, not on their order.
func UserNames(emails []string) map[string]string {
	length := make(map[string]int, len(emails))
	for _, e := range emails {
		length[e] = hashLen
	}
	for {
		out := make(map[string]string, len(length))
		owners := map[string][]string{}
		for e, n := range length {
			name := withHash(sanitize(e), hashOf(e, n), "user")
			out[e] = name
			owners[name] = append(owners[name], e)
		}
		clash := false
		for _, es := range owners {
			if len(es) < 2 {
				continue
			}
			for _, e := range es {
				if length[e] < sha256.Size*2 {
					length[e] += 4
					clash = true
				}
			}
		}
		if !clash {
			return out
		}
	}
}
