// The errors of failed calls: the API's refusals parsed into *APIError, and the errors of the
// transport, each without the user's id the URL names or the API key.

package cipherscale

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// parseAPIError maps a non-2xx answer to an *APIError.
func parseAPIError(cl call, resp *http.Response, body []byte, key string) *APIError {
	ae := &APIError{
		Status:     resp.StatusCode,
		Method:     cl.method,
		Route:      cl.route,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var eb struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
		Code    json.RawMessage `json:"code"`
		Emails  json.RawMessage `json:"emails"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &eb) == nil {
		ae.Message = jsonText(eb.Message)
		if ae.Message == "" {
			ae.Message = jsonText(eb.Error)
		}
		ae.Code = jsonText(eb.Code)
		var emails []string
		if json.Unmarshal(eb.Emails, &emails) == nil {
			ae.Emails = emails
		} else if s := jsonText(eb.Emails); s != "" {
			ae.Emails = []string{s}
		}
	} else {
		ae.Message = excerpt(trimmed)
	}
	ae.Message = scrub(shorten(ae.Message, 4*maxExcerpt), key)
	ae.Code = scrub(shorten(ae.Code, maxExcerpt), key)
	return ae
}

// jsonText renders a JSON string, number or list of strings as text; anything else as "".
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, "; ")
	}
	return ""
}

// excerpt makes a short, printable message of a body that is not a JSON error. HTML pages (of a
// proxy, say) say nothing useful: the status text is used instead.
func excerpt(b []byte) string {
	if len(b) == 0 || b[0] == '<' || !utf8.Valid(b) {
		return ""
	}
	return shorten(string(b), maxExcerpt)
}

// shorten collapses whitespace, drops control characters and cuts s to n runes.
func shorten(s string, n int) string {
	var sb strings.Builder
	count := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
			count++
		}
		space = false
		if count >= n {
			sb.WriteString("...")
			break
		}
		sb.WriteRune(r)
		count++
	}
	return sb.String()
}

// stripURLErr drops the URL that a *url.Error repeats (it names the user's id) and keeps its
// cause, which errors.Is still sees (a context error, a timeout).
func stripURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		if ue.Timeout() {
			return &timeoutError{op: ue.Op, err: ue.Err}
		}
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

func stripURL(err error) string { return stripURLErr(err).Error() }

// timeoutError keeps the Timeout() of the *url.Error it replaces.
type timeoutError struct {
	op  string
	err error
}

func (e *timeoutError) Error() string { return strings.ToLower(e.op) + ": " + e.err.Error() }

func (e *timeoutError) Unwrap() error { return e.err }

func (e *timeoutError) Timeout() bool { return true }

// scrub removes the key from s, should the service or a library have repeated it.
func scrub(s, key string) string {
	if key == "" || !strings.Contains(s, key) {
		return s
	}
	return strings.ReplaceAll(s, key, "<redacted>")
}

// scrubErr is scrub for an error, which keeps its chain when the key is not in its text.
func scrubErr(err error, key string) error {
	if err == nil || key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return errors.New(scrub(err.Error(), key))
}

func isCTL(r rune) bool { return r < 0x20 || r == 0x7f }
