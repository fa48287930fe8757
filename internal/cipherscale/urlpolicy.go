package cipherscale

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DefaultAPIHost is the host tenant objects may name when the operator is told no other: the
// host of DefaultBaseURL.
const DefaultAPIHost = "public-api.cipherscale.com"

// URLPolicy is the operator's own rule for the base URLs that tenant objects name (their
// spec.url): whoever may write a tenant object chooses where the operator connects, with its
// network position and a key, so the process decides which hosts that may be. The zero value
// allows https to DefaultAPIHost only.
type URLPolicy struct {
	// Hosts are the host names allowed: an exact name, or "*.example.com" for any subdomain of
	// example.com (not example.com itself). An IP address is allowed only when listed as it
	// is. Empty: DefaultAPIHost.
	Hosts []string
	// AllowInsecureHTTP allows plain http (to every allowed host, loopback included). Without
	// it only https is allowed.
	AllowInsecureHTTP bool
}

// ParseHosts parses a comma-separated list of host names and patterns for URLPolicy.Hosts.
func ParseHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		switch {
		case strings.Contains(name, "*"):
			return nil, fmt.Errorf("%q: a wildcard is allowed only as the first label (*.example.com)", h)
		case strings.ContainsAny(name, "/:@ ") && net.ParseIP(name) == nil:
			return nil, fmt.Errorf("%q is not a host name (no scheme, port or path)", h)
		case name != h && net.ParseIP(name) != nil:
			return nil, fmt.Errorf("%q: a wildcard cannot apply to an IP address", h)
		case name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "."):
			return nil, fmt.Errorf("%q is not a host name", h)
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, errors.New("no host given")
	}
	return out, nil
}

// hosts returns the allowed hosts, DefaultAPIHost when none is set.
func (p URLPolicy) hosts() []string {
	if len(p.Hosts) == 0 {
		return []string{DefaultAPIHost}
	}
	return p.Hosts
}

// String describes the policy for a message: "https to public-api.cipherscale.com".
func (p URLPolicy) String() string {
	scheme := "https"
	if p.AllowInsecureHTTP {
		scheme = "http(s)"
	}
	return scheme + " to " + strings.Join(p.hosts(), ", ")
}

// Validate parses raw as a base URL (ValidateBaseURL) and checks it against the policy: the
// scheme must be https unless AllowInsecureHTTP is set, and the host one of Hosts. Its errors
// say what the operator allows, never what is at the URL: nothing is connected to.
func (p URLPolicy) Validate(raw string) (*url.URL, error) {
	u, err := ValidateBaseURL(raw, true)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "http" && !p.AllowInsecureHTTP {
		return nil, fmt.Errorf("cipherscale: base URL refused: the operator allows only https (it was not started with --allow-insecure-http)")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if !p.allows(host) {
		return nil, fmt.Errorf("cipherscale: base URL refused: the operator allows only %s (--api-hosts), not %s", strings.Join(p.hosts(), ", "), host)
	}
	return u, nil
}

// allows reports whether host (lower case, without a trailing dot) is allowed. An IP address
// matches only an identical listed address (so 127.0.0.1 does not allow 127.0.0.2, nor ::1);
// a name matches a listed name or a "*." pattern of one of its parent domains.
func (p URLPolicy) allows(host string) bool {
	ip := net.ParseIP(host)
	for _, h := range p.hosts() {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if ip != nil {
			if lip := net.ParseIP(h); lip != nil && lip.Equal(ip) {
				return true
			}
			continue
		}
		if parent, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+parent) {
				return true
			}
			continue
		}
		if host == h {
			return true
		}
	}
	return false
}

// ValidateBaseURL parses raw as the base URL of the API: absolute, http or https, with a host,
// without credentials, query or fragment. Plain http is refused unless the host is loopback
// (127.0.0.0/8, ::1, localhost) or allowInsecure is set. The result has no trailing slash.
func ValidateBaseURL(raw string, allowInsecure bool) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("cipherscale: base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may hold credentials: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cipherscale: invalid base URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, errors.New("cipherscale: invalid base URL: the scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("cipherscale: invalid base URL: it must be absolute, with a host")
	}
	if u.User != nil {
		return nil, errors.New("cipherscale: invalid base URL: credentials are not allowed in it (use the API key)")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("cipherscale: invalid base URL: a query or fragment is not allowed")
	}
	if u.Opaque != "" {
		return nil, errors.New("cipherscale: invalid base URL: it must be of the form scheme://host/path")
	}
	if scheme == "http" && !allowInsecure && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("cipherscale: invalid base URL: https is required for host %s "+
			"(plain http is allowed only for loopback hosts or with AllowInsecureHTTP)", u.Hostname())
	}
	u.Scheme = scheme
	u.Path = strings.TrimRight(u.Path, "/")
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/")
	}
	return u, nil
}

func isLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
