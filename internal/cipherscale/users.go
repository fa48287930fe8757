package cipherscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const usersPath = "/tenants/users"

func userPath(id string) string { return usersPath + "/" + url.PathEscape(id) }

// checkID refuses an id that is not a UUID before it is put in a path or a body: an id the API
// sent (such as "../../admin/keys") must never address another route.
func checkID(route, what, id string) error {
	if !IsUUID(id) {
		return fmt.Errorf("cipherscale API %s: invalid %s %s: not a UUID", route, what, quoteBad(id))
	}
	return nil
}

// checkIDs is checkID for each of ids.
func checkIDs(route, what string, ids []string) error {
	for _, id := range ids {
		if err := checkID(route, what, id); err != nil {
			return err
		}
	}
	return nil
}

// ListUsersPage reads one page of the user list (endpoint 1). A limit of 0 leaves the page size to
// the service; sort names fields, "-" first for descending order.
func (c *Client) ListUsersPage(ctx context.Context, limit, offset int, sort ...string) (*Page, error) {
	if limit < 0 || offset < 0 {
		return nil, fmt.Errorf("cipherscale API %s: limit and offset must not be negative", RouteListUsers)
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	q.Set("offset", strconv.Itoa(offset))
	for _, s := range sort {
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("cipherscale API %s: empty sort field", RouteListUsers)
		}
		q.Add("sort", s)
	}
	// The service serves at most MaxPageSize users whatever limit was asked (10 when none).
	asked := MaxPageSize
	if limit > 0 {
		asked = min(limit, MaxPageSize)
	}
	var p *Page
	_, err := c.do(ctx, call{method: http.MethodGet, route: RouteListUsers, path: usersPath, query: q, idempotent: true,
		decode: func(r io.Reader) (err error) {
			p, err = decodePage(r, asked)
			return err
		}})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ListUsers reads every user, in pages of MaxPageSize, in creation order.
//
// Offset pagination skips users when others delete users while the list is read, so each page
// after the first starts at the last user of the page before it: when that user is not the
// first of the new page, or a user comes twice, or at the end the users read are not the total
// the service reports, the list shifted under the read, and it is read again from the start, up
// to listAttempts times, after which the error wraps ErrListChanged. A user that existed during
// the whole read is therefore never missing from a successful result.
//
// The service is not trusted to end its pagination: a read past MaxListUsers users, past
// MaxListMemory of users beyond ListMemoryPerUser a user, or past MaxListUsers/10 pages, fails with a *DecodeError wrapping
// ErrListTooLarge; a page that holds more users than asked for, or an empty page that says
// hasNext, with a *DecodeError. The total the service reports sizes nothing.
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	return c.ListUsersProgress(ctx, nil)
}

// ListUsersProgress is ListUsers, telling progress, when not nil, after each page how many users
// the current read holds so far and the total the service reports (a read that starts again
// starts its count again).
func (c *Client) ListUsersProgress(ctx context.Context, progress func(read, total int)) ([]User, error) {
	var last error
	for attempt := 1; attempt <= listAttempts; attempt++ {
		users, err := c.readList(ctx, progress)
		if !errors.Is(err, errShifted) {
			return users, err
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("cipherscale API %s: %w: read %d times; last: %w", RouteListUsers, ErrListChanged, listAttempts, last)
}

// errShifted marks a read of the list that found it shifted: ListUsers reads it again.
var errShifted = errors.New("the list shifted while it was read")

// readList reads the list once, as ListUsers describes.
func (c *Client) readList(ctx context.Context, progress func(read, total int)) ([]User, error) {
	var (
		users    chunkedUsers
		seen     = map[[16]byte]struct{}{}
		memory   int64
		offset   int
		boundary string // the last user of the previous page; the next page must start with it
		maxPages = max(c.maxUsers/minAveragePage, 1) + 2
		invalid  = func(wrap error, format string, args ...any) error {
			err := fmt.Errorf(format, args...)
			if wrap != nil {
				err = fmt.Errorf("%w: %w", wrap, err)
			}
			return c.decodeErr(http.MethodGet, RouteListUsers, err)
		}
	)
	for pages := 1; ; pages++ {
		p, err := c.ListUsersPage(ctx, MaxPageSize, offset)
		if err != nil {
			return nil, fmt.Errorf("listing users at offset %d: %w", offset, err)
		}
		data := p.Data
		if boundary != "" {
			if len(data) == 0 || data[0].ID != boundary {
				// Users deleted before the offset make the page start later, with a user not read
				// yet; a page that starts with a user read before does not follow the offset.
				if len(data) > 0 {
					if _, again := seen[uuidKey(data[0].ID)]; again {
						return nil, invalid(nil, "the service's pagination does not end: the page at offset %d "+
							"starts with user %s of an earlier page (the offset is not followed)", offset, data[0].ID)
					}
				}
				return nil, fmt.Errorf("%w: the page at offset %d does not start with the last user of the page before it", errShifted, offset)
			}
			data = data[1:]
		}
		for i := range data {
			u := &data[i]
			key := uuidKey(u.ID)
			if _, dup := seen[key]; dup {
				return nil, fmt.Errorf("%w: user %s came twice", errShifted, u.ID)
			}
			seen[key] = struct{}{}
			if users.n >= c.maxUsers {
				return nil, invalid(ErrListTooLarge, "the service sent more than %d users", c.maxUsers)
			}
			// The cap grows with the users read: a real tenant of 100,000 users (about 600 bytes
			// each, estimated) is read, while users of unusual size (100 roles each) are refused.
			if memory += userFootprint(u); memory > c.maxMemory+int64(users.n)*ListMemoryPerUser {
				return nil, invalid(ErrListTooLarge, "the %d users read so far take more than %d bytes of memory (estimated)",
					users.n, c.maxMemory+int64(users.n)*ListMemoryPerUser)
			}
			users.add(u)
		}
		if progress != nil {
			progress(users.n, p.Total)
		}
		if !p.HasNext {
			if users.n != p.Total {
				return nil, fmt.Errorf("%w: read %d users, the service says it holds %d", errShifted, users.n, p.Total)
			}
			return users.slice(), nil
		}
		n := len(p.Data)
		if n < 2 {
			return nil, invalid(nil, "the page at offset %d holds %d users and says hasNext (total %d): "+
				"the service's pagination does not end", offset, n, p.Total)
		}
		if pages >= maxPages {
			return nil, invalid(ErrListTooLarge, "read %d pages (%d users) and the service still says hasNext "+
				"(total %d): its pagination does not end", pages, users.n, p.Total)
		}
		// The next page overlaps this one by its last user, which tells a shifted list.
		offset += n - 1
		boundary = p.Data[n-1].ID
	}
}

// chunkedUsers collects users in chunks of fixed size, so that a growing list is never copied
// while it is read (a slice grown by append holds its old and new arrays at once): a list
// refused at its cap has cost the memory of its users only.
type chunkedUsers struct {
	chunks [][]User
	n      int
}

const userChunk = 4096

func (c *chunkedUsers) add(u *User) {
	if len(c.chunks) == 0 || len(c.chunks[len(c.chunks)-1]) == userChunk {
		size := userChunk
		if len(c.chunks) == 0 {
			size = MaxPageSize // most tenants are small
		}
		c.chunks = append(c.chunks, make([]User, 0, size))
	}
	last := &c.chunks[len(c.chunks)-1]
	if len(*last) == cap(*last) { // the first, small chunk is full: grow it to a whole chunk
		*last = append(make([]User, 0, userChunk), *last...)
	}
	*last = append(*last, *u)
	c.n++
}

// slice returns the users in one slice.
func (c *chunkedUsers) slice() []User {
	switch len(c.chunks) {
	case 0:
		return []User{}
	case 1:
		return c.chunks[0]
	}
	out := make([]User, 0, c.n)
	for i, ch := range c.chunks {
		out = append(out, ch...)
		c.chunks[i] = nil
	}
	return out
}

// uuidKey packs a UUID (checked by checkUser) into 16 bytes, case-insensitively, for a set that
// takes little memory.
func uuidKey(id string) [16]byte {
	var k [16]byte
	j := 0
	for i := 0; i < len(id) && j < 32; i++ {
		c := id[i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			continue
		}
		k[j/2] |= v << (4 * (1 - j%2))
		j++
	}
	return k
}

// GetUser reads one user (endpoint 3).
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	return c.userCall(ctx, call{method: http.MethodGet, route: RouteGetUser, idempotent: true}, id, "")
}

// UpdateProfile writes the fields of p that are set (endpoint 4).
func (c *Client) UpdateProfile(ctx context.Context, id string, p ProfileUpdate) (*User, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("cipherscale API %s: encoding the request: %w", RouteUpdateProfile, err)
	}
	return c.userCall(ctx, call{method: http.MethodPut, route: RouteUpdateProfile, body: body, idempotent: true}, id, "")
}

// DeactivateUser deactivates a user (endpoint 6).
func (c *Client) DeactivateUser(ctx context.Context, id string) (*User, error) {
	return c.userCall(ctx, call{method: http.MethodPatch, route: RouteDeactivateUser, idempotent: true}, id, "/deactivate")
}

// ReactivateUser reactivates a user (endpoint 7). Reactivating an active user changes nothing,
// so the call is retried like the idempotent ones.
func (c *Client) ReactivateUser(ctx context.Context, id string) (*User, error) {
	return c.userCall(ctx, call{method: http.MethodPost, route: RouteReactivateUser, idempotent: true}, id, "/reactivate")
}

// userCall sends cl to the user id (path suffix suffix) and decodes the User it answers.
func (c *Client) userCall(ctx context.Context, cl call, id, suffix string) (*User, error) {
	if err := checkID(cl.route, "user id", id); err != nil {
		return nil, err
	}
	cl.path = userPath(id) + suffix
	resp, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	u, err := decodeUser(resp.body)
	if err != nil {
		return nil, c.decodeErr(cl.method, cl.route, err)
	}
	return u, nil
}

// DeleteUser deletes a user (endpoint 5). A user already gone (404) counts as deleted.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	if err := checkID(RouteDeleteUser, "user id", id); err != nil {
		return err
	}
	_, err := c.do(ctx, call{method: http.MethodDelete, route: RouteDeleteUser, path: userPath(id), idempotent: true})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// ResendInvitation resends the invitation of a pending user (endpoint 8). It is never retried
// after a 5xx or a lost answer: a retry could send a second email. A 429 (a refusal) is retried.
func (c *Client) ResendInvitation(ctx context.Context, id string) error {
	if err := checkID(RouteResendInvitation, "user id", id); err != nil {
		return err
	}
	_, err := c.do(ctx, call{method: http.MethodPost, route: RouteResendInvitation, path: userPath(id) + "/invite"})
	return err
}

// UserRoles reads a user's roles (endpoint 9): direct and inherited, or one of the two. A single
// role object in the answer is read as a one-element list.
func (c *Client) UserRoles(ctx context.Context, id string, filter RoleFilter) ([]Role, error) {
	if err := checkID(RouteUserRoles, "user id", id); err != nil {
		return nil, err
	}
	q := url.Values{}
	switch filter {
	case AllRoles:
	case DirectRolesOnly:
		q.Set("rolesOnly", "true")
	case GroupRolesOnly:
		q.Set("groupsOnly", "true")
	default:
		return nil, fmt.Errorf("cipherscale API %s: unknown role filter %d", RouteUserRoles, filter)
	}
	resp, err := c.do(ctx, call{method: http.MethodGet, route: RouteUserRoles, path: userPath(id) + "/roles", query: q, idempotent: true})
	if err != nil {
		return nil, err
	}
	roles, err := decodeRoles(resp.body)
	if err != nil {
		return nil, c.decodeErr(http.MethodGet, RouteUserRoles, err)
	}
	return roles, nil
}

// PatchRoles adds and removes direct roles of a user in one call (endpoint 10). Both lists are
// always sent.
func (c *Client) PatchRoles(ctx context.Context, id string, p RolesPatch) error {
	if err := checkID(RoutePatchRoles, "user id", id); err != nil {
		return err
	}
	if err := checkIDs(RoutePatchRoles, "role id", append(append([]string{}, p.AddedRoles...), p.RemovedRoles...)); err != nil {
		return err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("cipherscale API %s: encoding the request: %w", RoutePatchRoles, err)
	}
	_, err = c.do(ctx, call{method: http.MethodPatch, route: RoutePatchRoles, path: userPath(id) + "/roles", body: body, idempotent: true})
	return err
}

// AddToGroups adds a user to groups (endpoint 11), sending {"groups": [...]} (contract point 5).
// Adding a group the user has is a no-op, so the call is retried like the idempotent ones.
func (c *Client) AddToGroups(ctx context.Context, id string, groupIDs []string) error {
	if err := checkID(RouteAddToGroups, "user id", id); err != nil {
		return err
	}
	if err := checkIDs(RouteAddToGroups, "group id", groupIDs); err != nil {
		return err
	}
	if groupIDs == nil {
		groupIDs = []string{}
	}
	body, err := json.Marshal(GroupsAdd{Groups: groupIDs})
	if err != nil {
		return fmt.Errorf("cipherscale API %s: encoding the request: %w", RouteAddToGroups, err)
	}
	_, err = c.do(ctx, call{method: http.MethodPost, route: RouteAddToGroups, path: userPath(id) + "/groups", body: body, idempotent: true})
	return err
}

// RemoveFromGroup removes a user from a group (endpoint 12).
func (c *Client) RemoveFromGroup(ctx context.Context, id, groupID string) error {
	if err := checkID(RouteRemoveFromGroup, "user id", id); err != nil {
		return err
	}
	if err := checkID(RouteRemoveFromGroup, "group id", groupID); err != nil {
		return err
	}
	_, err := c.do(ctx, call{method: http.MethodDelete, route: RouteRemoveFromGroup,
		path: userPath(id) + "/groups/" + url.PathEscape(groupID), idempotent: true})
	return err
}

// decodeErr makes a *DecodeError of err, without the key should the service have put it in a
// value that the message repeats.
func (c *Client) decodeErr(method, route string, err error) error {
	if key, kerr := c.key.Key(); kerr == nil {
		err = scrubErr(err, key)
	}
	return &DecodeError{Method: method, Route: route, Err: err}
}
