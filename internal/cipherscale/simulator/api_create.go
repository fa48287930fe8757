// The bulk create (cipherscale.RouteCreateUsers): each item checked and answered as the API does.

package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

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
