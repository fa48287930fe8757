package onboarding

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestUserNamesAreValidDistinctAndStable(t *testing.T) {
	tests := []struct {
		name   string
		emails []string
	}{
		{"case only", []string{"Jane.Smith@Example.com", "jane.smith@example.com", "JANE.SMITH@EXAMPLE.COM"}},
		{"punctuation only", []string{"jane.smith@example.com", "jane_smith@example.com", "jane-smith@example.com", "janesmith@example.com", "jane+smith@example.com", "jane..smith@example.com"}},
		{"domain punctuation", []string{"a@b-c.com", "a@b.c.com", "a.b@c.com"}},
		{"nothing but symbols and non-ASCII", []string{"é@ü.de", "ø@ü.de", "__@--.io"}},
		{"very long", []string{strings.Repeat("a", 200) + "@example.com", strings.Repeat("a", 200) + "@example.org", strings.Repeat("a", 199) + "b@example.com"}},
		{"leading and trailing symbols", []string{".x.@example.com", "x@example.com", "-x-@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := UserNames(tt.emails)
			seen := map[string]string{}
			for _, e := range tt.emails {
				n := names[e]
				if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
					t.Errorf("name %q of %q is not a DNS-1123 subdomain: %v", n, e, errs)
				}
				if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
					t.Errorf("name %q of %q is not a DNS-1123 label: %v", n, e, errs)
				}
				if prev, dup := seen[n]; dup {
					t.Errorf("%q and %q both get the name %q", prev, e, n)
				}
				seen[n] = e
				if n != UserName(e) {
					t.Errorf("the name of %q depends on the other emails: %q alone, %q in the set", e, UserName(e), n)
				}
			}
			// Stable: the same set in another order gives the same names.
			rev := append([]string(nil), tt.emails...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			again := UserNames(rev)
			for _, e := range tt.emails {
				if again[e] != names[e] {
					t.Errorf("%q: %q, then %q in another order", e, names[e], again[e])
				}
			}
		})
	}
}

func TestUserNameReadsLikeTheEmail(t *testing.T) {
	got := UserName("Jane.Smith@Example.com")
	if !strings.HasPrefix(got, "jane-smith-example-com-") || len(got) != len("jane-smith-example-com-")+hashLen {
		t.Errorf("UserName = %q, want jane-smith-example-com-<%d hex digits>", got, hashLen)
	}
}
