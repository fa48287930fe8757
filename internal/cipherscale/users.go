package cipherscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const usersPath = "/tenants/users"

func userPath(id string) string { return usersPath + "/" + url.PathEscape(id) }

// checkID refuses an id that would address another route once put in a path.
func checkID(route, what, id string) error {
	if strings.TrimSpace(id) == "" || id == "." || id == ".." {
		return fmt.Errorf("cipherscale API %s: invalid %s %q", route, what, id)
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
	resp, err := c.do(ctx, call{method: http.MethodGet, route: RouteListUsers, path: usersPath, query: q, idempotent: true})
	if err != nil {
		return nil, err
	}
	var p Page
	if err := json.Unmarshal(resp.body, &p); err != nil {
		return nil, decodeErr(http.MethodGet, RouteListUsers, err)
	}
	for i := range p.Data {
		if err := checkUser(&p.Data[i]); err != nil {
			return nil, decodeErr(http.MethodGet, RouteListUsers, fmt.Errorf("user %d of the page: %w", i, err))
		}
	}
	if p.Total < 0 {
		return nil, decodeErr(http.MethodGet, RouteListUsers, fmt.Errorf("negative total %d", p.Total))
	}
	return &p, nil
}

// ListUsers reads every user, in pages of MaxPageSize, in creation order. The next offset is
// counted from the users received, so a service serving smaller pages than asked is followed.
// A service whose hasNext never ends is detected: an empty page that claims more, or more pages
// than the total allows, ends the call with a *DecodeError. A user seen twice (the list shifted
// while it was read) is kept once.
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var (
		users    []User
		seen     = map[string]bool{}
		offset   = 0
		minPage  = MaxPageSize
		pages    = 0
		listFail = func(format string, args ...any) error {
			return decodeErr(http.MethodGet, RouteListUsers, fmt.Errorf(format, args...))
		}
	)
	for {
		p, err := c.ListUsersPage(ctx, MaxPageSize, offset)
		if err != nil {
			return nil, fmt.Errorf("listing users at offset %d: %w", offset, err)
		}
		pages++
		for _, u := range p.Data {
			if !seen[u.ID] {
				seen[u.ID] = true
				users = append(users, u)
			}
		}
		if !p.HasNext {
			return users, nil
		}
		n := len(p.Data)
		if n == 0 {
			return nil, listFail("the page at offset %d is empty but says hasNext (total %d): "+
				"the service's pagination does not end", offset, p.Total)
		}
		minPage = min(minPage, n)
		if maxPages := (p.Total+minPage-1)/minPage + 2; pages >= maxPages {
			return nil, listFail("read %d pages (%d users) and the service still says hasNext "+
				"with a total of %d: its pagination does not end", pages, offset+n, p.Total)
		}
		offset += n
	}
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
	var u User
	if err := json.Unmarshal(resp.body, &u); err != nil {
		return nil, decodeErr(cl.method, cl.route, err)
	}
	if err := checkUser(&u); err != nil {
		return nil, decodeErr(cl.method, cl.route, err)
	}
	return &u, nil
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
	var roles RoleList
	if err := json.Unmarshal(resp.body, &roles); err != nil {
		return nil, decodeErr(http.MethodGet, RouteUserRoles, err)
	}
	return []Role(roles), nil
}

// PatchRoles adds and removes direct roles of a user in one call (endpoint 10). Both lists are
// always sent.
func (c *Client) PatchRoles(ctx context.Context, id string, p RolesPatch) error {
	if err := checkID(RoutePatchRoles, "user id", id); err != nil {
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

// checkUser reports a user missing what the client relies on: its id and its status. A status
// other than pending, active or inactive is not an error: it is returned as it is.
func checkUser(u *User) error {
	switch {
	case strings.TrimSpace(u.ID) == "":
		return errors.New("a user has no id")
	case strings.TrimSpace(string(u.Status)) == "":
		return errors.New("a user has no status")
	}
	return nil
}

// decodeUsers reads an array of users, or a single user object as a one-element array.
func decodeUsers(b []byte) ([]User, error) {
	b = bytes.TrimSpace(b)
	var users []User
	if len(b) > 0 && b[0] == '{' {
		var u User
		if err := json.Unmarshal(b, &u); err != nil {
			return nil, err
		}
		users = []User{u}
	} else if err := json.Unmarshal(b, &users); err != nil {
		return nil, err
	}
	for i := range users {
		if err := checkUser(&users[i]); err != nil {
			return nil, fmt.Errorf("user %d of the answer: %w", i, err)
		}
	}
	return users, nil
}

func decodeErr(method, route string, err error) error {
	return &DecodeError{Method: method, Route: route, Err: err}
}
