package simulator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("request body larger than %d bytes", maxBody)
	}
	return b, nil
}

// decodeObject decodes a body that must be one JSON object.
func decodeObject(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return fmt.Errorf("the body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the body is not valid: %w", err)
	}
	return nil
}

func (s *Server) handleAPI(m apiMatch, r *http.Request) response {
	switch m.route {
	case cipherscale.RouteListUsers:
		return s.listUsers(r.URL.Query())
	case cipherscale.RouteCreateUsers:
		body, err := readBody(r)
		if err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		return s.createUsers(body)
	case cipherscale.RouteGetUser:
		return s.withUser(m.id, func(u *user) response {
			return response{status: http.StatusOK, body: s.t.render(u)}
		})
	case cipherscale.RouteUpdateProfile:
		body, err := readBody(r)
		if err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		return s.updateProfile(m.id, body)
	case cipherscale.RouteDeleteUser:
		return s.withUser(m.id, func(u *user) response {
			if u.isOwner {
				return errorf(http.StatusForbidden, "the tenant owner cannot be deleted")
			}
			s.t.remove(u)
			return response{status: http.StatusNoContent}
		})
	case cipherscale.RouteDeactivateUser:
		return s.withUser(m.id, func(u *user) response {
			if u.isOwner {
				return errorf(http.StatusForbidden, "the tenant owner cannot be deactivated")
			}
			if u.status != cipherscale.StatusInactive {
				u.status = cipherscale.StatusInactive
				u.updatedAt = s.t.tick()
				s.t.changed()
			}
			return response{status: http.StatusOK, body: s.t.render(u)}
		})
	case cipherscale.RouteReactivateUser:
		return s.withUser(m.id, func(u *user) response {
			want := cipherscale.StatusPending
			if u.accepted {
				want = cipherscale.StatusActive
			}
			if u.status != want {
				u.status = want
				u.updatedAt = s.t.tick()
				s.t.changed()
			}
			return response{status: http.StatusCreated, body: s.t.render(u)}
		})
	case cipherscale.RouteResendInvitation:
		return s.withUser(m.id, func(u *user) response {
			if u.status != cipherscale.StatusPending {
				return errorf(http.StatusConflict, "the user is %s: only a pending user can be invited", u.status)
			}
			s.t.invites[u.norm]++
			return response{status: http.StatusNoContent}
		})
	case cipherscale.RouteUserRoles:
		return s.userRoles(m.id, r.URL.Query())
	case cipherscale.RoutePatchRoles:
		body, err := readBody(r)
		if err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		return s.patchRoles(m.id, body)
	case cipherscale.RouteAddToGroups:
		body, err := readBody(r)
		if err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		return s.addToGroups(m.id, body)
	case cipherscale.RouteRemoveFromGroup:
		return s.withUser(m.id, func(u *user) response {
			if _, ok := s.t.groups[m.groupID]; !ok {
				return errorf(http.StatusNotFound, "unknown group %q", m.groupID)
			}
			if i := slices.Index(u.groups, m.groupID); i >= 0 {
				u.groups = slices.Delete(u.groups, i, i+1)
				u.updatedAt = s.t.tick()
				s.t.changed()
			}
			return response{status: http.StatusNoContent}
		})
	}
	return errorf(http.StatusNotFound, "no such path")
}

// withUser runs fn under the lock with the user of the id, or answers 404.
func (s *Server) withUser(id string, fn func(u *user) response) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.t.byID[id]
	if !ok {
		return errorf(http.StatusNotFound, "unknown user %q", id)
	}
	return fn(u)
}

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

// newUserItem is one item of a create request; nil fields were absent (or null).
type newUserItem struct {
	Email  *string   `json:"email"`
	Groups *[]string `json:"groups"`
}

// emailOf extracts the email of an item that did not decode, when it is a string.
func emailOf(item json.RawMessage) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(item, &m) != nil {
		return "", false
	}
	var e string
	if json.Unmarshal(m["email"], &e) != nil {
		return "", false
	}
	return e, true
}

// appendOnce appends e to list unless it is already there.
func appendOnce(list []string, e string) []string {
	if slices.Contains(list, e) {
		return list
	}
	return append(list, e)
}

func (s *Server) createUsers(body []byte) response {
	body = bytes.TrimSpace(body)
	var raw []json.RawMessage
	single := false
	switch {
	case len(body) > 0 && body[0] == '{':
		if !json.Valid(body) {
			return errorf(http.StatusBadRequest, "the body is not valid JSON")
		}
		single = true
		raw = []json.RawMessage{body}
	case len(body) > 0 && body[0] == '[':
		if err := json.Unmarshal(body, &raw); err != nil {
			return errorf(http.StatusBadRequest, "the body is not valid JSON: %v", err)
		}
	default:
		return errorf(http.StatusBadRequest, "the body must be a user object or an array of 1..%d user objects", cipherscale.MaxCreateBatch)
	}
	if len(raw) == 0 {
		return errorf(http.StatusBadRequest, "the array of users is empty")
	}
	if len(raw) > cipherscale.MaxCreateBatch {
		return errorf(http.StatusBadRequest, "%d users in one request: at most %d", len(raw), cipherscale.MaxCreateBatch)
	}

	type item struct {
		email  string
		norm   string
		groups []string
	}
	items := make([]item, len(raw))
	var bad []string // emails named by the 400
	var problems []string
	for i, r := range raw {
		var it newUserItem
		r = bytes.TrimSpace(r)
		if len(r) == 0 || r[0] != '{' || json.Unmarshal(r, &it) != nil {
			if e, ok := emailOf(r); ok {
				bad = appendOnce(bad, e)
			}
			problems = append(problems, fmt.Sprintf("item %d is not a valid user object", i))
			continue
		}
		email := ""
		if it.Email != nil {
			email = *it.Email
		}
		switch {
		case it.Email == nil:
			problems = append(problems, fmt.Sprintf("item %d has no email", i))
		case !validEmail(email):
			bad = appendOnce(bad, email)
			problems = append(problems, fmt.Sprintf("item %d has an invalid email", i))
		case it.Groups == nil:
			bad = appendOnce(bad, email)
			problems = append(problems, fmt.Sprintf("item %d has no groups (required, may be [])", i))
		}
		items[i] = item{email: email, norm: cipherscale.NormalizeEmail(email)}
		if it.Groups != nil {
			items[i].groups = dedupe(*it.Groups)
		}
	}
	// Duplicates within the batch.
	seen := map[string]string{}
	for _, it := range items {
		if it.norm == "" {
			continue
		}
		if first, ok := seen[it.norm]; ok {
			bad = appendOnce(bad, first)
			if !slices.Contains(problems, "duplicate emails in the request") {
				problems = append(problems, "duplicate emails in the request")
			}
			continue
		}
		seen[it.norm] = it.email
	}
	if len(problems) > 0 {
		return errResponse(&apiError{status: http.StatusBadRequest, code: codeFor(http.StatusBadRequest),
			msg: "invalid users, nothing created: " + strings.Join(problems, "; "), emails: bad})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var exist []string
	for _, it := range items {
		if _, ok := s.t.byEmail[it.norm]; ok {
			exist = append(exist, it.email)
		}
	}
	if len(exist) > 0 {
		return errResponse(&apiError{status: http.StatusConflict, code: codeFor(http.StatusConflict),
			msg: "emails already exist in the tenant, nothing created", emails: exist})
	}
	var unknownGroups, named []string
	for _, it := range items {
		for _, gid := range it.groups {
			if _, ok := s.t.groups[gid]; !ok {
				unknownGroups = appendOnce(unknownGroups, gid)
				named = appendOnce(named, it.email)
			}
		}
	}
	if len(named) > 0 {
		return errResponse(&apiError{status: http.StatusNotFound, code: codeFor(http.StatusNotFound),
			msg: fmt.Sprintf("unknown groups %q, nothing created", unknownGroups), emails: named})
	}

	created := make([]cipherscale.User, 0, len(items))
	for _, it := range items {
		now := s.t.tick()
		u := &user{id: newID(), email: it.email, norm: it.norm, status: cipherscale.StatusPending,
			roles: []string{}, groups: it.groups, createdAt: now, updatedAt: now}
		s.t.insert(u)
		s.t.invites[u.norm]++
		created = append(created, s.t.render(u))
	}
	if single {
		return response{status: http.StatusCreated, body: created[0]}
	}
	return response{status: http.StatusCreated, body: created}
}

func (s *Server) updateProfile(id string, body []byte) response {
	var p cipherscale.ProfileUpdate
	if err := decodeObject(body, &p); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return s.withUser(id, func(u *user) response {
		if p.FirstName != nil {
			u.firstName = *p.FirstName
		}
		if p.LastName != nil {
			u.lastName = *p.LastName
		}
		if p.Image != nil {
			u.image = *p.Image
		}
		u.updatedAt = s.t.tick()
		s.t.changed()
		return response{status: http.StatusOK, body: s.t.render(u)}
	})
}

func boolParam(q url.Values, name string) (bool, error) {
	vs, ok := q[name]
	if !ok {
		return false, nil
	}
	switch vs[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s must be true or false", name)
}

func (s *Server) userRoles(id string, q url.Values) response {
	rolesOnly, err := boolParam(q, "rolesOnly")
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	groupsOnly, err := boolParam(q, "groupsOnly")
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if rolesOnly && groupsOnly {
		return errorf(http.StatusBadRequest, "rolesOnly and groupsOnly cannot both be true")
	}
	return s.withUser(id, func(u *user) response {
		switch {
		case rolesOnly:
			return response{status: http.StatusOK, body: s.t.directRoles(u)}
		case groupsOnly:
			return response{status: http.StatusOK, body: s.t.groupRoles(u, nil)}
		}
		return response{status: http.StatusOK, body: s.t.allRoles(u)}
	})
}

func (s *Server) patchRoles(id string, body []byte) response {
	var p struct {
		AddedRoles   *[]string `json:"addedRoles"`
		RemovedRoles *[]string `json:"removedRoles"`
	}
	if err := decodeObject(body, &p); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if p.AddedRoles == nil || p.RemovedRoles == nil {
		return errorf(http.StatusBadRequest, "addedRoles and removedRoles are both required (may be [])")
	}
	added, removed := dedupe(*p.AddedRoles), dedupe(*p.RemovedRoles)
	for _, id := range added {
		if slices.Contains(removed, id) {
			return errorf(http.StatusBadRequest, "role %q is both added and removed", id)
		}
	}
	return s.withUser(id, func(u *user) response {
		var unknown []string
		for _, rid := range slices.Concat(added, removed) {
			if _, ok := s.t.roles[rid]; !ok {
				unknown = append(unknown, rid)
			}
		}
		if len(unknown) > 0 {
			return errorf(http.StatusNotFound, "unknown roles %q, nothing changed", unknown)
		}
		changed := false
		for _, rid := range removed {
			if i := slices.Index(u.roles, rid); i >= 0 {
				u.roles = slices.Delete(u.roles, i, i+1)
				changed = true
			}
		}
		for _, rid := range added {
			if !slices.Contains(u.roles, rid) {
				u.roles = append(u.roles, rid)
				changed = true
			}
		}
		if changed {
			u.updatedAt = s.t.tick()
			s.t.changed()
		}
		return response{status: http.StatusOK}
	})
}

func (s *Server) addToGroups(id string, body []byte) response {
	var b struct {
		Groups []string `json:"groups"`
	}
	if err := decodeObject(body, &b); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if len(b.Groups) == 0 {
		return errorf(http.StatusBadRequest, `groups is required: {"groups": ["<groupId>", ...]}`)
	}
	return s.withUser(id, func(u *user) response {
		var unknown []string
		for _, gid := range b.Groups {
			if _, ok := s.t.groups[gid]; !ok {
				unknown = appendOnce(unknown, gid)
			}
		}
		if len(unknown) > 0 {
			return errorf(http.StatusNotFound, "unknown groups %q, nothing changed", unknown)
		}
		changed := false
		for _, gid := range b.Groups {
			if !slices.Contains(u.groups, gid) {
				u.groups = append(u.groups, gid)
				changed = true
			}
		}
		if changed {
			u.updatedAt = s.t.tick()
			s.t.changed()
		}
		return response{status: http.StatusCreated}
	})
}
