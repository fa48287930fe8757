package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

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
