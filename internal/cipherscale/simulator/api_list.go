// The user list (cipherscale.RouteListUsers): paged by limit and offset, sorted as the API sorts.

package simulator

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// sortFields are the fields the list can be sorted by.
var sortFields = map[string]func(a, b *user) int{
	"email":     func(a, b *user) int { return strings.Compare(a.norm, b.norm) },
	"createdAt": func(a, b *user) int { return a.createdAt.Compare(b.createdAt) },
	"updatedAt": func(a, b *user) int { return a.updatedAt.Compare(b.updatedAt) },
	"status":    func(a, b *user) int { return strings.Compare(string(a.status), string(b.status)) },
	"firstName": func(a, b *user) int { return strings.Compare(a.firstName, b.firstName) },
	"lastName":  func(a, b *user) int { return strings.Compare(a.lastName, b.lastName) },
}

type sortSpec struct {
	cmp  func(a, b *user) int
	desc bool
}

func intParam(q url.Values, name string, def, lowest int) (int, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < lowest {
		return 0, fmt.Errorf("%s must be an integer of at least %d", name, lowest)
	}
	return n, nil
}

func (s *Server) listUsers(q url.Values) response {
	limit, err := intParam(q, "limit", 10, 1)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	limit = min(limit, cipherscale.MaxPageSize)
	offset, err := intParam(q, "offset", 0, 0)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	sorts := q["sort"]
	specs := make([]sortSpec, 0, len(sorts))
	for _, v := range sorts {
		field, desc := strings.CutPrefix(v, "-")
		fn, ok := sortFields[field]
		if !ok {
			return errorf(http.StatusBadRequest,
				"unknown sort field %q (known: email, createdAt, updatedAt, status, firstName, lastName)", field)
		}
		specs = append(specs, sortSpec{fn, desc})
	}

	fast := fastEncoding()
	s.mu.Lock()
	defer s.mu.Unlock()
	view := s.t.users
	if len(specs) > 0 {
		view = s.t.sorted(strings.Join(sorts, ","), specs)
	}
	total := len(view)
	start := min(offset, total)
	end := min(start+limit, total)
	page := view[start:end]
	hasNext, hasPrevious := offset+len(page) < total, offset > 0
	if fast {
		raw := s.t.appendPage(make([]byte, 0, 64+700*len(page)), page, total, offset/limit, limit, hasNext, hasPrevious)
		return response{status: http.StatusOK, raw: raw}
	}
	data := make([]cipherscale.User, 0, len(page))
	for _, u := range page {
		data = append(data, s.t.render(u))
	}
	return response{status: http.StatusOK, body: cipherscale.Page{
		Data:        data,
		Total:       total,
		Page:        offset / limit,
		Limit:       limit,
		HasNext:     hasNext,
		HasPrevious: hasPrevious,
	}}
}

// sorted returns the users in the order of specs, then creation order; cached until a change.
func (t *tenant) sorted(key string, specs []sortSpec) []*user {
	if v, ok := t.sortCache[key]; ok {
		return v
	}
	v := slices.Clone(t.users)
	slices.SortFunc(v, func(a, b *user) int {
		for _, sp := range specs {
			c := sp.cmp(a, b)
			if sp.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.seq, b.seq)
	})
	if t.sortCache == nil || len(t.sortCache) >= 8 {
		t.sortCache = map[string][]*user{}
	}
	t.sortCache[key] = v
	return v
}
