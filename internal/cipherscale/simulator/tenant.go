package simulator

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// Errors returned by the Go API of the Server (AddRole, AddGroup, AddUser, SeedUsers, Accept,
// ApplySeed). Test them with errors.Is; the control surface answers them with 400, 404 and 409.
var (
	ErrInvalid  = errors.New("invalid input")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// apiError is an error with the HTTP status, code and offending emails it is answered with.
type apiError struct {
	status int
	code   string
	msg    string
	emails []string
}

func (e *apiError) Error() string { return e.msg }

// Is maps the status to the exported sentinels.
func (e *apiError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.status == http.StatusBadRequest
	case ErrNotFound:
		return e.status == http.StatusNotFound
	case ErrConflict:
		return e.status == http.StatusConflict
	}
	return false
}

func newErr(status int, format string, args ...any) *apiError {
	return &apiError{status: status, code: codeFor(status), msg: fmt.Sprintf(format, args...)}
}

// codeFor is the machine-readable code of an error status.
func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	}
	if t := http.StatusText(status); t != "" {
		return strings.ReplaceAll(strings.ToLower(t), " ", "_")
	}
	return fmt.Sprintf("status_%d", status)
}

// RoleSeed describes a role to add to the tenant. ID is generated (a uuid) when empty; Type
// defaults to DEFAULT when empty. The JSON names are those of POST /_sim/roles.
type RoleSeed struct {
	ID          string               `json:"id,omitempty"`
	Name        string               `json:"name"`
	Description string               `json:"description,omitempty"`
	Type        cipherscale.RoleType `json:"type"`
}

// GroupSeed describes a group to add to the tenant. Roles are role ids the members inherit. The
// JSON names are those of POST /_sim/groups.
type GroupSeed struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Roles       []string `json:"roles"`
}

// UserSeed describes a user made "by hand" (for example the tenant owner). Status defaults to
// pending; a user seeded active or inactive counts as having accepted the invitation. Roles are
// direct role ids, Groups group ids. The JSON names are those of POST /_sim/users.
type UserSeed struct {
	Email     string             `json:"email"`
	Status    cipherscale.Status `json:"status,omitempty"`
	IsOwner   bool               `json:"isOwner,omitempty"`
	FirstName string             `json:"firstName,omitempty"`
	LastName  string             `json:"lastName,omitempty"`
	Image     string             `json:"image,omitempty"`
	Roles     []string           `json:"roles,omitempty"`
	Groups    []string           `json:"groups,omitempty"`
}

type user struct {
	seq       uint64
	id        string
	email     string
	norm      string
	status    cipherscale.Status
	accepted  bool
	isOwner   bool
	firstName string
	lastName  string
	image     string
	roles     []string // direct role ids, in assignment order
	groups    []string // group ids, in joining order
	createdAt time.Time
	updatedAt time.Time
}

type role struct {
	id          string
	name        string
	description string
	typ         cipherscale.RoleType
	deleteable  bool
	createdAt   time.Time
	updatedAt   time.Time
}

type group struct {
	id          string
	name        string
	description string
	roles       []string
	createdAt   time.Time
	updatedAt   time.Time
}

// tenant is the state of the simulated tenant. Every access holds Server.mu.
type tenant struct {
	lastTime time.Time
	nextSeq  uint64

	users   []*user // creation order (ascending seq)
	byID    map[string]*user
	byEmail map[string]*user // by cipherscale.NormalizeEmail

	roles      map[string]*role
	roleOrder  []string
	groups     map[string]*group
	groupOrder []string

	invites map[string]int // invitations sent, by normalized email

	sortCache map[string][]*user // sorted views of users, dropped on every change
}

func newTenant() *tenant {
	return &tenant{
		byID:    map[string]*user{},
		byEmail: map[string]*user{},
		roles:   map[string]*role{},
		groups:  map[string]*group{},
		invites: map[string]int{},
	}
}

// tick returns the current time, strictly after every time returned before.
func (t *tenant) tick() time.Time {
	now := time.Now().UTC().Round(0)
	if !now.After(t.lastTime) {
		now = t.lastTime.Add(time.Nanosecond)
	}
	t.lastTime = now
	return now
}

func (t *tenant) changed() { t.sortCache = nil }

func (t *tenant) insert(u *user) {
	t.nextSeq++
	u.seq = t.nextSeq
	t.users = append(t.users, u)
	t.byID[u.id] = u
	t.byEmail[u.norm] = u
	t.changed()
}

func (t *tenant) remove(u *user) {
	i := sort.Search(len(t.users), func(i int) bool { return t.users[i].seq >= u.seq })
	if i < len(t.users) && t.users[i] == u {
		copy(t.users[i:], t.users[i+1:])
		t.users[len(t.users)-1] = nil
		t.users = t.users[:len(t.users)-1]
	}
	delete(t.byID, u.id)
	delete(t.byEmail, u.norm)
	t.changed()
}

func newID() string { return uuid.NewString() }

func timePtr(t time.Time) *time.Time { return &t }

func (r *role) api() cipherscale.Role {
	return cipherscale.Role{
		ID:          r.id,
		CreatedAt:   timePtr(r.createdAt),
		UpdatedAt:   timePtr(r.updatedAt),
		Name:        r.name,
		Description: r.description,
		Deleteable:  r.deleteable,
		Type:        r.typ,
	}
}

func (g *group) api() cipherscale.Group {
	return cipherscale.Group{
		ID:          g.id,
		Name:        g.name,
		Description: g.description,
		CreatedAt:   timePtr(g.createdAt),
		UpdatedAt:   timePtr(g.updatedAt),
	}
}

// render returns the API form of a user: direct roles and groups as full objects, never null lists.
func (t *tenant) render(u *user) cipherscale.User {
	roles := make(cipherscale.RoleList, 0, len(u.roles))
	for _, id := range u.roles {
		roles = append(roles, t.roles[id].api())
	}
	groups := make([]cipherscale.Group, 0, len(u.groups))
	for _, id := range u.groups {
		groups = append(groups, t.groups[id].api())
	}
	return cipherscale.User{
		ID:         u.id,
		CreatedAt:  u.createdAt,
		UpdatedAt:  u.updatedAt,
		Email:      u.email,
		Status:     u.status,
		FirstName:  u.firstName,
		LastName:   u.lastName,
		IsOwner:    u.isOwner,
		MaxDevices: nil,
		Image:      u.image,
		Roles:      roles,
		Groups:     groups,
		Devices:    []cipherscale.Device{},
	}
}

// directRoles, groupRoles and allRoles answer GET /tenants/users/{id}/roles.
func (t *tenant) directRoles(u *user) []cipherscale.Role {
	out := make([]cipherscale.Role, 0, len(u.roles))
	for _, id := range u.roles {
		out = append(out, t.roles[id].api())
	}
	return out
}

func (t *tenant) groupRoles(u *user, seen map[string]bool) []cipherscale.Role {
	if seen == nil {
		seen = map[string]bool{}
	}
	out := []cipherscale.Role{}
	for _, gid := range u.groups {
		for _, rid := range t.groups[gid].roles {
			if seen[rid] {
				continue
			}
			seen[rid] = true
			out = append(out, t.roles[rid].api())
		}
	}
	return out
}

func (t *tenant) allRoles(u *user) []cipherscale.Role {
	seen := map[string]bool{}
	out := make([]cipherscale.Role, 0, len(u.roles))
	for _, id := range u.roles {
		if !seen[id] {
			seen[id] = true
			out = append(out, t.roles[id].api())
		}
	}
	return append(out, t.groupRoles(u, seen)...)
}

// validID accepts a caller-chosen id: non-empty, no slash, no whitespace, no query characters.
func validID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/?#% \t\r\n")
}

// validEmail is the simulator's idea of an email: local@domain.tld, at most 254 characters, no
// whitespace, one @, a domain of non-empty dot-separated labels with at least one dot.
func validEmail(e string) bool {
	if len(e) == 0 || len(e) > 254 || strings.ContainsAny(e, " \t\r\n\v\f\"<>(),;:\\[]") {
		return false
	}
	at := strings.IndexByte(e, '@')
	if at <= 0 || at != strings.LastIndexByte(e, '@') {
		return false
	}
	domain := e[at+1:]
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" {
			return false
		}
	}
	return true
}

func validRoleType(t cipherscale.RoleType) bool {
	switch t {
	case cipherscale.RoleTypeOwner, cipherscale.RoleTypeAdmin, cipherscale.RoleTypeDefault,
		cipherscale.RoleTypeBasic, cipherscale.RoleTypeBilling, cipherscale.RoleTypeAuditor,
		cipherscale.RoleTypeSupport:
		return true
	}
	return false
}

// dedupe returns ids without repeats, in first-seen order.
func dedupe(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (t *tenant) addRole(r RoleSeed) (cipherscale.Role, error) {
	if strings.TrimSpace(r.Name) == "" {
		return cipherscale.Role{}, newErr(http.StatusBadRequest, "role name is required")
	}
	if r.Type == "" {
		r.Type = cipherscale.RoleTypeDefault
	}
	if !validRoleType(r.Type) {
		return cipherscale.Role{}, newErr(http.StatusBadRequest,
			"role type %q is not one of OWNER ADMIN DEFAULT BASIC BILLING AUDITOR SUPPORT", r.Type)
	}
	if r.ID == "" {
		r.ID = newID()
	} else if !validID(r.ID) {
		return cipherscale.Role{}, newErr(http.StatusBadRequest, "role id %q is not a valid id", r.ID)
	}
	if _, ok := t.roles[r.ID]; ok {
		return cipherscale.Role{}, newErr(http.StatusConflict, "role %s exists", r.ID)
	}
	now := t.tick()
	ro := &role{id: r.ID, name: r.Name, description: r.Description, typ: r.Type,
		deleteable: r.Type != cipherscale.RoleTypeOwner, createdAt: now, updatedAt: now}
	t.roles[ro.id] = ro
	t.roleOrder = append(t.roleOrder, ro.id)
	return ro.api(), nil
}

func (t *tenant) addGroup(g GroupSeed) (cipherscale.Group, error) {
	if strings.TrimSpace(g.Name) == "" {
		return cipherscale.Group{}, newErr(http.StatusBadRequest, "group name is required")
	}
	if g.ID == "" {
		g.ID = newID()
	} else if !validID(g.ID) {
		return cipherscale.Group{}, newErr(http.StatusBadRequest, "group id %q is not a valid id", g.ID)
	}
	if _, ok := t.groups[g.ID]; ok {
		return cipherscale.Group{}, newErr(http.StatusConflict, "group %s exists", g.ID)
	}
	for _, rid := range g.Roles {
		if _, ok := t.roles[rid]; !ok {
			return cipherscale.Group{}, newErr(http.StatusNotFound, "unknown role %q", rid)
		}
	}
	now := t.tick()
	gr := &group{id: g.ID, name: g.Name, description: g.Description, roles: dedupe(g.Roles),
		createdAt: now, updatedAt: now}
	t.groups[gr.id] = gr
	t.groupOrder = append(t.groupOrder, gr.id)
	t.changed()
	return gr.api(), nil
}

func (t *tenant) addUser(s UserSeed) (cipherscale.User, error) {
	if !validEmail(s.Email) {
		return cipherscale.User{}, &apiError{status: http.StatusBadRequest, code: "bad_request",
			msg: "invalid email", emails: []string{s.Email}}
	}
	status := s.Status.Normalized()
	if status == "" {
		status = cipherscale.StatusPending
	}
	if !status.Known() {
		return cipherscale.User{}, newErr(http.StatusBadRequest, "status %q is not one of pending, active, inactive", s.Status)
	}
	norm := cipherscale.NormalizeEmail(s.Email)
	if _, ok := t.byEmail[norm]; ok {
		return cipherscale.User{}, &apiError{status: http.StatusConflict, code: "conflict",
			msg: "email exists", emails: []string{s.Email}}
	}
	for _, rid := range s.Roles {
		if _, ok := t.roles[rid]; !ok {
			return cipherscale.User{}, newErr(http.StatusNotFound, "unknown role %q", rid)
		}
	}
	for _, gid := range s.Groups {
		if _, ok := t.groups[gid]; !ok {
			return cipherscale.User{}, newErr(http.StatusNotFound, "unknown group %q", gid)
		}
	}
	now := t.tick()
	u := &user{
		id: newID(), email: s.Email, norm: norm, status: status,
		accepted: status != cipherscale.StatusPending, isOwner: s.IsOwner,
		firstName: s.FirstName, lastName: s.LastName, image: s.Image,
		roles: dedupe(s.Roles), groups: dedupe(s.Groups), createdAt: now, updatedAt: now,
	}
	t.insert(u)
	return t.render(u), nil
}

func (t *tenant) seedUsers(n int, pattern string) error {
	if n < 0 {
		return newErr(http.StatusBadRequest, "negative count %d", n)
	}
	emails := make([]string, n)
	norms := make([]string, n)
	seen := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		e := fmt.Sprintf(pattern, i+1)
		if !validEmail(e) {
			return newErr(http.StatusBadRequest, "pattern %q makes the invalid email %q", pattern, e)
		}
		norm := cipherscale.NormalizeEmail(e)
		if _, ok := t.byEmail[norm]; ok || seen[norm] {
			return newErr(http.StatusConflict, "pattern %q makes the email %q twice", pattern, e)
		}
		seen[norm] = true
		emails[i], norms[i] = e, norm
	}
	if cap(t.users)-len(t.users) < n {
		grown := make([]*user, len(t.users), len(t.users)+n)
		copy(grown, t.users)
		t.users = grown
	}
	// One buffered random source for all ids, and one clock reading spread a nanosecond apart.
	rnd := bufio.NewReaderSize(rand.Reader, 16*1024)
	now := t.tick()
	for i := 0; i < n; i++ {
		id, err := uuid.NewRandomFromReader(rnd)
		if err != nil {
			return newErr(http.StatusInternalServerError, "generating an id: %v", err)
		}
		ts := now.Add(time.Duration(i))
		t.insert(&user{id: id.String(), email: emails[i], norm: norms[i],
			status: cipherscale.StatusPending, roles: []string{}, groups: []string{},
			createdAt: ts, updatedAt: ts})
	}
	if n > 0 {
		t.lastTime = now.Add(time.Duration(n - 1))
	}
	return nil
}

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

// AddRole adds a role to the tenant. The id is generated when empty; a taken id is ErrConflict, an
// empty name or an unknown type ErrInvalid.
func (s *Server) AddRole(r RoleSeed) (cipherscale.Role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.addRole(r)
}

// AddGroup adds a group whose members inherit the given roles. An unknown role is ErrNotFound.
func (s *Server) AddGroup(g GroupSeed) (cipherscale.Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.addGroup(g)
}

// AddUser adds a user made by hand (such as the tenant owner), without sending an invitation. A
// duplicate email (case-insensitive) is ErrConflict; an unknown role or group ErrNotFound.
func (s *Server) AddUser(u UserSeed) (cipherscale.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.addUser(u)
}

// SeedUsers adds n pending users quickly, with the emails fmt.Sprintf(emailPattern, i) for i from
// 1 to n (e.g. "user%d@example.com"), no roles, no groups, and no invitation counted. It adds
// nothing when one of the emails is invalid or taken.
func (s *Server) SeedUsers(n int, emailPattern string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.seedUsers(n, emailPattern)
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
