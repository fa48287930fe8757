package cipherscale_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

func TestURLPolicy(t *testing.T) {
	vendor := cipherscale.URLPolicy{}
	local := cipherscale.URLPolicy{Hosts: []string{"127.0.0.1", "localhost"}, AllowInsecureHTTP: true}
	localTLS := cipherscale.URLPolicy{Hosts: []string{"127.0.0.1", "localhost"}}
	company := cipherscale.URLPolicy{Hosts: []string{"*.cipherscale.example", "api.corp.example"}}
	tests := []struct {
		name   string
		policy cipherscale.URLPolicy
		url    string
		want   string // "" when allowed, else a part of the refusal
	}{
		{"the documented URL", vendor, cipherscale.DefaultBaseURL, ""},
		{"another path on the vendor's host", vendor, "https://public-api.cipherscale.com/prod", ""},
		{"the vendor's host with a trailing dot", vendor, "https://public-api.cipherscale.com./qa", ""},
		{"the vendor's host in capitals", vendor, "https://PUBLIC-API.cipherscale.com/qa", ""},
		{"plain http to the vendor", vendor, "http://public-api.cipherscale.com/qa", "only https"},
		{"cloud metadata", vendor, "http://169.254.169.254/", "only https"},
		{"cloud metadata over https", vendor, "https://169.254.169.254/latest", "not 169.254.169.254"},
		{"loopback http by default", vendor, "http://127.0.0.1:8081/", "only https"},
		{"loopback https by default", vendor, "https://127.0.0.1:8443/", "not 127.0.0.1"},
		{"localhost by default", vendor, "https://localhost/", "not localhost"},
		{"an in-cluster service", vendor, "https://kubernetes.default.svc/", "not kubernetes.default.svc"},
		{"a pod address", vendor, "https://10.244.1.7:9443/", "not 10.244.1.7"},
		{"a look-alike suffix", vendor, "https://public-api.cipherscale.com.evil.example/", "not public-api.cipherscale.com.evil.example"},
		{"a subdomain of the vendor's host", vendor, "https://x.public-api.cipherscale.com/", "not x.public-api.cipherscale.com"},
		{"a decimal IP", vendor, "https://2130706433/", "not 2130706433"},
		{"IPv6 loopback", vendor, "https://[::1]/", "not ::1"},
		{"credentials in the URL", vendor, "https://u:p@public-api.cipherscale.com/", "credentials"},
		{"listed loopback over http", local, "http://127.0.0.1:4000/", ""},
		{"listed localhost over http", local, "http://localhost:4000/qa", ""},
		{"other loopback address than listed", local, "http://127.0.0.2:4000/", "not 127.0.0.2"},
		{"IPv6 loopback when 127.0.0.1 is listed", local, "http://[::1]:4000/", "not ::1"},
		{"metadata with the test policy", local, "http://169.254.169.254/", "not 169.254.169.254"},
		{"the vendor with the test policy", local, cipherscale.DefaultBaseURL, "not public-api.cipherscale.com"},
		{"listed loopback over http without --allow-insecure-http", localTLS, "http://127.0.0.1:4000/", "only https"},
		{"listed loopback over https", localTLS, "https://127.0.0.1:4000/", ""},
		{"a subdomain of a pattern", company, "https://eu.cipherscale.example/t", ""},
		{"a deeper subdomain of a pattern", company, "https://a.b.cipherscale.example/", ""},
		{"the pattern's own domain", company, "https://cipherscale.example/", "not cipherscale.example"},
		{"an exact name", company, "https://api.corp.example/", ""},
		{"a subdomain of an exact name", company, "https://x.api.corp.example/", "not x.api.corp.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.policy.Validate(tt.url)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate(%q) = %v; want allowed", tt.url, err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate(%q) allowed; want refused with %q", tt.url, tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate(%q) = %v; want %q in it", tt.url, err, tt.want)
			}
		})
	}
}

func TestParseHosts(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"public-api.cipherscale.com", "public-api.cipherscale.com"},
		{" 127.0.0.1 , localhost ", "127.0.0.1,localhost"},
		{"*.Example.com", "*.example.com"},
		{"::1", "::1"},
		{"public-api.cipherscale.com,*.corp.local", "public-api.cipherscale.com,*.corp.local"},
	} {
		got, err := cipherscale.ParseHosts(tc.in)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("ParseHosts(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", " , ", "https://x.example", "x.example:443", "a.*.example", "*.10.0.0.1", "*", ".example", "x.example/path"} {
		if got, err := cipherscale.ParseHosts(bad); err == nil {
			t.Errorf("ParseHosts(%q) = %v; want an error", bad, got)
		}
	}
}

// TestPolicyRefusesBeforeConnecting: a client configured with a URL outside the policy is never
// made, so nothing connects; one inside it connects.
func TestPolicyRefusesBeforeConnecting(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"data":[],"total":0,"page":0,"limit":100,"hasNext":false,"hasPrevious":false}`))
	}))
	defer srv.Close()
	if _, err := cipherscale.New(cipherscale.Config{BaseURL: srv.URL, Key: cipherscale.StaticKey("k-123"),
		Policy: &cipherscale.URLPolicy{}}); err == nil {
		t.Fatal("the default policy allowed a loopback http URL")
	}
	c, err := cipherscale.New(cipherscale.Config{BaseURL: srv.URL, Key: cipherscale.StaticKey("k-123"),
		Policy: &cipherscale.URLPolicy{Hosts: []string{"127.0.0.1"}, AllowInsecureHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if hits.Load() == 0 {
		t.Fatal("the allowed URL was not reached")
	}
}
