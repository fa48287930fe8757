package cipherscale

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"
)

// decodePage reads one page of the user list from r as a stream: the users of "data" one at a
// time, so that a page far larger than asked for is refused at its (maxUsers+1)th user instead
// of being built in memory. Each user is checked with checkUser. Unknown fields are skipped
// token by token. Trailing data after the page object is refused.
func decodePage(r io.Reader, maxUsers int) (*Page, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := expectDelim(dec, '{', "the page"); err != nil {
		return nil, err
	}
	var p Page
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("the page has the field %q twice", key)
		}
		seen[key] = true
		switch key {
		case "data":
			if p.Data, err = decodeUserArray(dec, maxUsers); err != nil {
				return nil, err
			}
		case "total", "page", "limit":
			n, err := decodeCount(dec, key)
			if err != nil {
				return nil, err
			}
			switch key {
			case "total":
				p.Total = n
			case "page":
				p.Page = n
			default:
				p.Limit = n
			}
		case "hasNext", "hasPrevious":
			var b *bool
			if err := dec.Decode(&b); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			if b != nil && key == "hasNext" {
				p.HasNext = *b
			} else if b != nil {
				p.HasPrevious = *b
			}
		default:
			if err := skipValue(dec); err != nil {
				return nil, err
			}
		}
	}
	if err := expectDelim(dec, '}', "the page"); err != nil {
		return nil, err
	}
	if err := expectEOF(dec); err != nil {
		return nil, err
	}
	return &p, nil
}

// decodeUserArray reads the "data" array, or null, refusing more than maxUsers users.
func decodeUserArray(dec *json.Decoder, maxUsers int) ([]User, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("data is %s, not a list of users", describeToken(tok))
	}
	users := make([]User, 0, min(maxUsers, MaxPageSize))
	for dec.More() {
		if len(users) == maxUsers {
			return nil, fmt.Errorf("the page holds more than the %d users asked for", maxUsers)
		}
		var u User
		if err := dec.Decode(&u); err != nil {
			return nil, fmt.Errorf("user %d of the page: %w", len(users), err)
		}
		if err := checkUser(&u); err != nil {
			return nil, fmt.Errorf("user %d of the page: %w", len(users), err)
		}
		users = append(users, u)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, err
	}
	return users, nil
}

// decodeCount reads a non-negative integer that fits an int32, or null (0).
func decodeCount(dec *json.Decoder, key string) (int, error) {
	var n *json.Number
	if err := dec.Decode(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	if n == nil {
		return 0, nil
	}
	v, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s %s is not an integer", key, quoteBad(n.String()))
	}
	if v < 0 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%s %d is out of range", key, v)
	}
	return int(v), nil
}

// skipValue reads and drops one JSON value, token by token, so that a large value of an unknown
// field is never held in memory.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func expectDelim(dec *json.Decoder, want json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s is empty or cut short", what)
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s is %s, not a JSON object", what, describeToken(tok))
	}
	return nil
}

func expectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data follows the JSON value")
	}
	return nil
}

// describeToken names a token for a message without repeating a long or hostile value.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// decodeUser reads one user and checks it.
func decodeUser(b []byte) (*User, error) {
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, err
	}
	if err := checkUser(&u); err != nil {
		return nil, err
	}
	return &u, nil
}

// decodeUsers reads an array of users, or a single user object as a one-element array, and
// checks each.
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

// decodeRoles reads a list of roles, or a single role object, and checks each.
func decodeRoles(b []byte) ([]Role, error) {
	var roles RoleList
	if err := json.Unmarshal(b, &roles); err != nil {
		return nil, err
	}
	if len(roles) > maxGroupsPerUser {
		return nil, fmt.Errorf("the answer holds %d roles, more than the %d allowed", len(roles), maxGroupsPerUser)
	}
	for i := range roles {
		if err := checkRole(&roles[i]); err != nil {
			return nil, fmt.Errorf("role %d of the answer: %w", i, err)
		}
	}
	return []Role(roles), nil
}

// decodeStream hands a 2xx body to cl.decode through a reader that stops at maxResponseBytes,
// and sorts its failure: a body cut by the network is a *TransportError, a body past the limit or
// one cl.decode refuses a *DecodeError.
func (c *Client) decodeStream(cl call, resp *http.Response, start time.Time, key string) (*response, error) {
	body := &cappedReader{r: resp.Body, left: maxResponseBytes}
	err := cl.decode(body)
	c.observe(cl.route, resp.StatusCode, time.Since(start))
	switch {
	case body.over:
		return nil, &DecodeError{Method: cl.method, Route: cl.route,
			Err: fmt.Errorf("response larger than %d bytes", int64(maxResponseBytes))}
	case body.readErr != nil:
		return nil, &TransportError{Method: cl.method, Route: cl.route,
			Err: scrubErr(fmt.Errorf("reading the response: %w", stripURLErr(body.readErr)), key)}
	case err != nil:
		return nil, &DecodeError{Method: cl.method, Route: cl.route, Err: scrubErr(err, key)}
	}
	return &response{status: resp.StatusCode, header: resp.Header}, nil
}

// cappedReader reads at most left bytes of r; past them it fails and records that it did. It
// records a failure of r itself apart, so that a cut connection is not taken for bad data.
type cappedReader struct {
	r       io.Reader
	left    int64
	over    bool
	readErr error
}

var errTooLarge = errors.New("response too large")

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			c.over = true
			return 0, errTooLarge
		}
		if err != nil && !errors.Is(err, io.EOF) {
			c.readErr = err
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.readErr = err
	}
	return n, err
}
