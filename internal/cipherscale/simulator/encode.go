package simulator

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// The list endpoint encodes its pages by hand: reading a tenant of 100,000 users page by page
// must stay cheap, and reflection-based encoding dominates that cost. The hand encoder writes
// exactly what json.Marshal writes for cipherscale.Page; fastEncoding checks that once against
// json.Marshal on sample users and falls back to json.Marshal if the types ever diverge.

var (
	fastOnce sync.Once
	fastOK   bool
)

func fastEncoding() bool {
	fastOnce.Do(func() { fastOK = fastEncodingMatches() })
	return fastOK
}

// fastEncodingMatches compares the hand encoder with json.Marshal on a full and an empty user.
func fastEncodingMatches() bool {
	t := newTenant()
	if _, err := t.addRole(RoleSeed{ID: "r1", Name: `Ad"min<&>`, Description: "d\u2028\n", Type: cipherscale.RoleTypeAdmin}); err != nil {
		return false
	}
	if _, err := t.addRole(RoleSeed{ID: "r2", Name: "Plain"}); err != nil {
		return false
	}
	if _, err := t.addGroup(GroupSeed{ID: "g1", Name: "Eng\u00e9", Description: "x\ty", Roles: []string{"r1"}}); err != nil {
		return false
	}
	if _, err := t.addGroup(GroupSeed{ID: "g2", Name: "G"}); err != nil {
		return false
	}
	if _, err := t.addUser(UserSeed{Email: "a&b+tag@x.io", Status: cipherscale.StatusActive, IsOwner: true,
		FirstName: "Zoë", LastName: "O'Neil \\", Image: "https://x.io/i.png?a=1&b=2",
		Roles: []string{"r1", "r2"}, Groups: []string{"g1", "g2"}}); err != nil {
		return false
	}
	if _, err := t.addUser(UserSeed{Email: "e@x.io"}); err != nil {
		return false
	}
	for _, tc := range []struct {
		users            []*user
		total, page, lim int
		hasNext, hasPrev bool
	}{
		{t.users, 2, 0, 10, false, false},
		{nil, 0, 3, 100, true, true},
		{t.users[1:], 7, 1, 1, true, true},
	} {
		p := cipherscale.Page{Data: make([]cipherscale.User, 0, len(tc.users)), Total: tc.total, Page: tc.page,
			Limit: tc.lim, HasNext: tc.hasNext, HasPrevious: tc.hasPrev}
		for _, u := range tc.users {
			p.Data = append(p.Data, t.render(u))
		}
		want, err := json.Marshal(p)
		if err != nil {
			return false
		}
		got := t.appendPage(nil, tc.users, tc.total, tc.page, tc.lim, tc.hasNext, tc.hasPrev)
		if !bytes.Equal(want, got) {
			return false
		}
	}
	return true
}

func (t *tenant) appendPage(b []byte, users []*user, total, page, limit int, hasNext, hasPrevious bool) []byte {
	b = append(b, `{"data":[`...)
	for i, u := range users {
		if i > 0 {
			b = append(b, ',')
		}
		b = t.appendUser(b, u)
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"page":`...)
	b = strconv.AppendInt(b, int64(page), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"hasNext":`...)
	b = strconv.AppendBool(b, hasNext)
	b = append(b, `,"hasPrevious":`...)
	b = strconv.AppendBool(b, hasPrevious)
	return append(b, '}')
}

func (t *tenant) appendUser(b []byte, u *user) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, u.id)
	b = append(b, `,"createdAt":`...)
	b = appendTime(b, u.createdAt)
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, u.updatedAt)
	if u.email != "" {
		b = append(b, `,"email":`...)
		b = appendString(b, u.email)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, string(u.status))
	if u.firstName != "" {
		b = append(b, `,"firstName":`...)
		b = appendString(b, u.firstName)
	}
	if u.lastName != "" {
		b = append(b, `,"lastName":`...)
		b = appendString(b, u.lastName)
	}
	b = append(b, `,"isOwner":`...)
	b = strconv.AppendBool(b, u.isOwner)
	b = append(b, `,"maxDevices":null`...)
	if u.image != "" {
		b = append(b, `,"image":`...)
		b = appendString(b, u.image)
	}
	b = append(b, `,"roles":[`...)
	for i, id := range u.roles {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRole(b, t.roles[id])
	}
	b = append(b, `],"groups":[`...)
	for i, id := range u.groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendGroup(b, t.groups[id])
	}
	return append(b, `],"devices":[]}`...)
}

func appendRole(b []byte, r *role) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.id)
	b = append(b, `,"createdAt":`...)
	b = appendTime(b, r.createdAt)
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, r.updatedAt)
	b = append(b, `,"name":`...)
	b = appendString(b, r.name)
	if r.description != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, r.description)
	}
	b = append(b, `,"deleteable":`...)
	b = strconv.AppendBool(b, r.deleteable)
	if r.typ != "" {
		b = append(b, `,"type":`...)
		b = appendString(b, string(r.typ))
	}
	return append(b, '}')
}

func appendGroup(b []byte, g *group) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, g.id)
	if g.name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, g.name)
	}
	if g.description != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, g.description)
	}
	b = append(b, `,"createdAt":`...)
	b = appendTime(b, g.createdAt)
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, g.updatedAt)
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString writes s as encoding/json does: plain ASCII directly, anything else through
// json.Marshal, so that escaping (HTML characters, control characters, U+2028) is identical.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
