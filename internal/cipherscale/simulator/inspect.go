// What a test or the /_sim/ control API reads and does of a simulated tenant beside the API:
// its users, roles and groups as the API would show them, and the acts of a person (accepting an
// invitation, deleting a user by hand).

package simulator

import (
	"net/http"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

func (t *tenant) accept(id string) (cipherscale.User, error) {
	u, ok := t.byID[id]
	if !ok {
		return cipherscale.User{}, newErr(http.StatusNotFound, "unknown user %q", id)
	}
	if u.status != cipherscale.StatusPending {
		return cipherscale.User{}, newErr(http.StatusConflict, "user is %s, not pending", u.status)
	}
	u.status = cipherscale.StatusActive
	u.accepted = true
	u.updatedAt = t.tick()
	t.changed()
	return t.render(u), nil
}

// DeleteUser removes a user, as another administrator would: ErrNotFound when there is none.
func (s *Server) DeleteUser(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.t.byID[id]
	if !ok {
		return ErrNotFound
	}
	s.t.remove(u)
	return nil
}

// Accept marks that the invitee accepted: pending -> active. An unknown user is ErrNotFound, a user
// who is not pending ErrConflict.
func (s *Server) Accept(id string) (cipherscale.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.accept(id)
}

// Users returns a copy of every user in creation order, with their direct roles.
func (s *Server) Users() []cipherscale.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]cipherscale.User, 0, len(s.t.users))
	for _, u := range s.t.users {
		out = append(out, s.t.render(u))
	}
	return out
}

// UserByEmail finds a user by email, case-insensitively.
func (s *Server) UserByEmail(email string) (cipherscale.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.t.byEmail[cipherscale.NormalizeEmail(email)]
	if !ok {
		return cipherscale.User{}, false
	}
	return s.t.render(u), true
}

// UserByID finds a user by id.
func (s *Server) UserByID(id string) (cipherscale.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.t.byID[id]
	if !ok {
		return cipherscale.User{}, false
	}
	return s.t.render(u), true
}

// InvitationsSent returns how many invitations were sent to an address (case-insensitive): one
// per user created through the API, plus one per successful resend. It survives deleting the user.
func (s *Server) InvitationsSent(email string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.invites[cipherscale.NormalizeEmail(email)]
}

// Roles returns the tenant's roles in creation order.
func (s *Server) Roles() []cipherscale.Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]cipherscale.Role, 0, len(s.t.roleOrder))
	for _, id := range s.t.roleOrder {
		out = append(out, s.t.roles[id].api())
	}
	return out
}

// Groups returns the tenant's groups in creation order.
func (s *Server) Groups() []cipherscale.Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]cipherscale.Group, 0, len(s.t.groupOrder))
	for _, id := range s.t.groupOrder {
		out = append(out, s.t.groups[id].api())
	}
	return out
}
