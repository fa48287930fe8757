package cipherscale

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// APIError is an error response of the Cipherscale API. It never carries the API key.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Method and Route name the call, with the route as a template (for example
	// "PATCH /tenants/users/{id}/roles"), so that no identifier is repeated in messages.
	Method string
	Route  string
	// Message and Code are the service's own, where it gave them.
	Message string
	Code    string
	// Emails names the offending items of a refused bulk create (400 or 409).
	Emails []string
	// RetryAfter is the wait the service asked for with a 429 or 503, zero when it gave none.
	RetryAfter time.Duration
	// ThrottledFor, on a 429, is how long the service has been answering 429 to every call of
	// the client (the storm so far), so that a caller can wait longer as a storm goes on.
	ThrottledFor time.Duration
}

// Error names the call by its route template and never shows an email address: emails in the
// service's message are redacted and Emails is only counted.
func (e *APIError) Error() string {
	var sb strings.Builder
	sb.WriteString("cipherscale API")
	if call := callName(e.Method, e.Route); call != "" {
		sb.WriteString(" " + call)
	}
	fmt.Fprintf(&sb, ": %d", e.Status)
	msg := RedactEmails(e.Message)
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if msg != "" {
		sb.WriteString(": " + msg)
	}
	if e.Code != "" {
		sb.WriteString(" (code " + RedactEmails(e.Code) + ")")
	}
	if n := len(e.Emails); n == 1 {
		sb.WriteString(" [1 email refused]")
	} else if n > 1 {
		fmt.Fprintf(&sb, " [%d emails refused]", n)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&sb, " (retry after %s)", e.RetryAfter)
	}
	return sb.String()
}

// callName is "METHOD route", without repeating the method when the route template (one of the
// Route* constants) already starts with it.
func callName(method, route string) string {
	switch {
	case method == "":
		return route
	case route == "":
		return method
	case strings.HasPrefix(route, method+" "):
		return route
	}
	return method + " " + route
}

// emailPattern matches anything that looks like an email address.
var emailPattern = regexp.MustCompile(`[\p{L}\p{N}._%+\-'!#$&*/=?^{|}~]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*`)

// RedactEmails replaces everything in s that looks like an email address with "<email>", so that
// a message of the service can be logged or shown in a condition.
func RedactEmails(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return emailPattern.ReplaceAllString(s, "<email>")
}

// StatusOf returns the HTTP status of an *APIError in err's chain, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// IsNotFound reports a 404: an unknown user, role or group.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports a 409: an email that exists, or an invitation for a user who is not pending.
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// IsUnauthorized reports a 401: a missing or wrong API key.
func IsUnauthorized(err error) bool { return StatusOf(err) == http.StatusUnauthorized }

// IsForbidden reports a 403, such as deleting or deactivating the tenant owner.
func IsForbidden(err error) bool { return StatusOf(err) == http.StatusForbidden }

// IsBadRequest reports a 400: input the service refused.
func IsBadRequest(err error) bool { return StatusOf(err) == http.StatusBadRequest }

// IsRateLimited reports a 429.
func IsRateLimited(err error) bool { return StatusOf(err) == http.StatusTooManyRequests }

// IsRetryable reports an error that may go away by itself: a 429, a 5xx, or a failure with no HTTP
// answer at all (a network error, a timeout: see IsTransport). A malformed response
// (*DecodeError) is not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	s := StatusOf(err)
	if s == http.StatusTooManyRequests || s >= 500 {
		return true
	}
	return s == 0 && IsTransport(err)
}

// TransportError is a call that got no HTTP answer: a refused or dropped connection, a timeout.
// Whether the server applied the request is unknown.
type TransportError struct {
	Method, Route string
	Err           error
}

// Error names the call by its route template, never by its URL (which holds ids), and redacts
// email addresses.
func (e *TransportError) Error() string {
	return fmt.Sprintf("cipherscale API %s: no answer: %s", callName(e.Method, e.Route), causeText(e.Err))
}

// causeText is the text of err without the URL a *url.Error repeats, with emails redacted.
func causeText(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return RedactEmails(err.Error())
}

func (e *TransportError) Unwrap() error { return e.Err }

// IsTransport reports a call that got no HTTP answer.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// DecodeError is a 2xx response the client refuses: bad JSON, a missing or invalid field (an id
// that is not a UUID, a string that is not UTF-8 or longer than any real one, a status outside
// the vocabulary), a page larger than asked for, a body or a list past its limits. Its message
// says what the service sent.
type DecodeError struct {
	Method, Route string
	Err           error
}

// Error names the call by its route template and redacts email addresses.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("cipherscale API %s: malformed response: %s", callName(e.Method, e.Route), causeText(e.Err))
}

func (e *DecodeError) Unwrap() error { return e.Err }

// RetryAfterOf returns the wait an *APIError asked for, or the wait for the turn of a
// *TurnError, or 0.
func RetryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	var te *TurnError
	if errors.As(err, &te) {
		return te.RetryAfter
	}
	return 0
}

// ThrottledForOf returns how long the API had been answering 429 when err, a 429, was made; 0
// for any other error.
func ThrottledForOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
		return ae.ThrottledFor
	}
	return 0
}

// RouteOf returns the route template (one of the Route* constants) of the call that failed with
// err: the route of the *APIError, *DecodeError or *TransportError in its chain, or "". It tells
// a failed read of the user list from a refused write.
func RouteOf(err error) string {
	var ae *APIError
	var de *DecodeError
	var te *TransportError
	switch {
	case errors.As(err, &ae):
		return ae.Route
	case errors.As(err, &de):
		return de.Route
	case errors.As(err, &te):
		return te.Route
	}
	return ""
}
