package cipherscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// CreateUsers creates users (endpoint 2) in batches of at most MaxCreateBatch, each sent as a JSON
// array, and returns the created users in request order.
//
// A create is never retried blindly (contract point 7). A 429 is a refusal and is retried after
// the pause. When the outcome of a batch is unknown (no answer, a 5xx, an answer that cannot be
// read), the user list is read: the batch's emails found there are taken as created, and only
// the missing ones are sent again, at most MaxRetries times, with backoff, within RetryBudget.
// A refused batch (400, 404, 409...) stops the call: the users created by earlier batches are
// returned with the *APIError, whose Emails names the offending items.
//
// Emails are compared case-insensitively; two items with the same email are refused before any
// request is sent.
func (c *Client) CreateUsers(ctx context.Context, users []NewUser) ([]User, error) {
	if len(users) == 0 {
		return nil, nil
	}
	index := make(map[string]int, len(users))
	for i, u := range users {
		e := NormalizeEmail(u.Email)
		if e == "" {
			return nil, fmt.Errorf("cipherscale API %s: item %d has no email", RouteCreateUsers, i)
		}
		if err := checkString("email", u.Email, maxEmailLen, true); err != nil {
			return nil, fmt.Errorf("cipherscale API %s: item %d: %w", RouteCreateUsers, i, err)
		}
		if err := checkIDs(RouteCreateUsers, "group id", u.Groups); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		if j, dup := index[e]; dup {
			return nil, fmt.Errorf("cipherscale API %s: items %d and %d have the same email "+
				"(emails are compared case-insensitively)", RouteCreateUsers, j, i)
		}
		index[e] = i
	}
	created := make([]User, 0, len(users))
	for start := 0; start < len(users); start += MaxCreateBatch {
		batch := users[start:min(start+MaxCreateBatch, len(users))]
		got, err := c.createBatch(ctx, batch)
		created = append(created, got...)
		if err != nil {
			return created, err
		}
	}
	return created, nil
}

// createBatch creates one batch of at most MaxCreateBatch users, as CreateUsers describes.
func (c *Client) createBatch(ctx context.Context, batch []NewUser) ([]User, error) {
	done := make(map[string]User, len(batch)) // by normalized email
	pending := append([]NewUser(nil), batch...)
	deadline := time.Now().Add(c.budget)
	for resends := 0; ; resends++ {
		body, err := json.Marshal(pending) // always an array, even for one user
		if err != nil {
			return inRequestOrder(batch, done), fmt.Errorf("cipherscale API %s: encoding the request: %w", RouteCreateUsers, err)
		}
		resp, err := c.do(ctx, call{method: http.MethodPost, route: RouteCreateUsers, path: usersPath, body: body})
		if err == nil {
			got, derr := decodeUsers(resp.body)
			if derr == nil {
				derr = matchCreated(pending, got, done)
			}
			if derr == nil {
				return inRequestOrder(batch, done), nil
			}
			// The service applied the batch, but which users it made cannot be read.
			err = c.decodeErr(http.MethodPost, RouteCreateUsers, derr)
		}
		// A 409 on a resend most likely names a user whose earlier create was applied after all.
		unknown := outcomeUnknown(err) || (resends > 0 && IsConflict(err))
		if !unknown || ctx.Err() != nil {
			return inRequestOrder(batch, done), err
		}

		// The outcome is unknown: look at the list before sending anything again.
		if wait := backoff(resends); time.Now().Add(wait).Before(deadline) {
			if serr := sleepCtx(ctx, wait); serr != nil {
				return inRequestOrder(batch, done), err
			}
		}
		live, lerr := c.ListUsers(ctx)
		if lerr != nil {
			// Still unknown: the caller observes the tenant again before creating anything.
			return inRequestOrder(batch, done), err
		}
		byEmail := make(map[string]User, len(live))
		for _, u := range live {
			byEmail[NormalizeEmail(u.Email)] = u
		}
		missing := pending[:0:0]
		for _, n := range pending {
			if u, ok := byEmail[NormalizeEmail(n.Email)]; ok {
				done[NormalizeEmail(n.Email)] = u
			} else {
				missing = append(missing, n)
			}
		}
		pending = missing
		if len(pending) == 0 {
			return inRequestOrder(batch, done), nil
		}
		if resends >= c.maxRetries || !time.Now().Before(deadline) {
			return inRequestOrder(batch, done), err
		}
	}
}

// outcomeUnknown reports an error after which the service may or may not have applied a create.
func outcomeUnknown(err error) bool {
	var de *DecodeError
	return IsTransport(err) || StatusOf(err) >= 500 || errors.As(err, &de)
}

// matchCreated records in done the users of an answer to a create of sent. The answer mirrors
// the request; users are matched by email, or by position when the answer carries no emails.
func matchCreated(sent []NewUser, got []User, done map[string]User) error {
	if len(got) != len(sent) {
		return fmt.Errorf("sent %d users, the answer holds %d", len(sent), len(got))
	}
	byEmail := make(map[string]User, len(got))
	for _, u := range got {
		if e := NormalizeEmail(u.Email); e != "" {
			byEmail[e] = u
		}
	}
	matched := make(map[string]User, len(sent))
	for i, n := range sent {
		e := NormalizeEmail(n.Email)
		switch u, ok := byEmail[e]; {
		case ok:
			matched[e] = u
		case NormalizeEmail(got[i].Email) == "":
			matched[e] = got[i]
		default:
			return fmt.Errorf("item %d of the request is not in the answer", i)
		}
	}
	for e, u := range matched {
		done[e] = u
	}
	return nil
}

func inRequestOrder(batch []NewUser, done map[string]User) []User {
	out := make([]User, 0, len(done))
	for _, n := range batch {
		if u, ok := done[NormalizeEmail(n.Email)]; ok {
			out = append(out, u)
		}
	}
	return out
}
