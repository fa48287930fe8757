package simulator

import (
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
