package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// UserRecord is one item of GET /_sim/users: a user and the invitations sent to their address.
type UserRecord struct {
	User            cipherscale.User `json:"user"`
	InvitationsSent int              `json:"invitationsSent"`
}

// LimitsBody is the body of PUT /_sim/limits.
type LimitsBody struct {
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	Burst             int     `json:"burst"`
}

// FaultsBody is the body of PUT /_sim/faults.
type FaultsBody struct {
	Rules []FaultRule `json:"rules"`
}

// decodeStrict decodes one JSON object, refusing unknown fields and trailing data.
func decodeStrict(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return fmt.Errorf("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the body is not valid: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("the body is not valid: data after the object")
	}
	return nil
}

// serveControl serves /_sim/. It needs no API key and is not counted in the statistics.
func (s *Server) serveControl(r *http.Request) response {
	path := strings.TrimSuffix(r.URL.Path, "/")
	allow := func(methods ...string) (response, bool) {
		for _, m := range methods {
			if r.Method == m {
				return response{}, true
			}
		}
		resp := errorf(http.StatusMethodNotAllowed, "method %s is not allowed here", r.Method)
		resp.header = map[string]string{"Allow": strings.Join(methods, ", ")}
		return resp, false
	}

	switch path {
	case "/_sim/roles":
		if resp, ok := allow(http.MethodPost); !ok {
			return resp
		}
		var seed RoleSeed
		if err := decodeStrict(r, &seed); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		role, err := s.AddRole(seed)
		if err != nil {
			return errResponse(err)
		}
		return response{status: http.StatusCreated, body: role}

	case "/_sim/groups":
		if resp, ok := allow(http.MethodPost); !ok {
			return resp
		}
		var seed GroupSeed
		if err := decodeStrict(r, &seed); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		g, err := s.AddGroup(seed)
		if err != nil {
			return errResponse(err)
		}
		return response{status: http.StatusCreated, body: g}

	case "/_sim/users":
		if resp, ok := allow(http.MethodGet, http.MethodPost); !ok {
			return resp
		}
		if r.Method == http.MethodGet {
			s.mu.Lock()
			defer s.mu.Unlock()
			out := make([]UserRecord, 0, len(s.t.users))
			for _, u := range s.t.users {
				out = append(out, UserRecord{User: s.t.render(u), InvitationsSent: s.t.invites[u.norm]})
			}
			return response{status: http.StatusOK, body: out}
		}
		var seed UserSeed
		if err := decodeStrict(r, &seed); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		u, err := s.AddUser(seed)
		if err != nil {
			return errResponse(err)
		}
		return response{status: http.StatusCreated, body: u}

	case "/_sim/faults":
		if resp, ok := allow(http.MethodPut, http.MethodDelete); !ok {
			return resp
		}
		if r.Method == http.MethodDelete {
			s.ClearFaults()
			return response{status: http.StatusNoContent}
		}
		var body FaultsBody
		if err := decodeStrict(r, &body); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		for i, rule := range body.Rules {
			if err := rule.validate(); err != nil {
				return errorf(http.StatusBadRequest, "rule %d: %v", i, err)
			}
		}
		s.SetFaults(body.Rules)
		return response{status: http.StatusNoContent}

	case "/_sim/limits":
		if resp, ok := allow(http.MethodPut); !ok {
			return resp
		}
		var body LimitsBody
		if err := decodeStrict(r, &body); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		if body.Burst < 0 {
			return errorf(http.StatusBadRequest, "burst must not be negative")
		}
		s.SetLimit(body.RequestsPerSecond, body.Burst)
		return response{status: http.StatusNoContent}

	case "/_sim/stats":
		if resp, ok := allow(http.MethodGet, http.MethodDelete); !ok {
			return resp
		}
		if r.Method == http.MethodDelete {
			s.ResetStats()
			return response{status: http.StatusNoContent}
		}
		return response{status: http.StatusOK, body: s.Stats()}

	case "/_sim/reset":
		if resp, ok := allow(http.MethodPost); !ok {
			return resp
		}
		s.Reset()
		return response{status: http.StatusNoContent}
	}

	if id, ok := strings.CutPrefix(path, "/_sim/users/"); ok {
		if id, ok := strings.CutSuffix(id, "/accept"); ok && id != "" && !strings.Contains(id, "/") {
			if resp, ok := allow(http.MethodPost); !ok {
				return resp
			}
			u, err := s.Accept(id)
			if err != nil {
				return errResponse(err)
			}
			return response{status: http.StatusOK, body: u}
		}
	}
	return errorf(http.StatusNotFound, "no such simulator path")
}
