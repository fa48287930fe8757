package cipherscale

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{" 7 ", 7 * time.Second},
		{"0.25", 250 * time.Millisecond},
		{"-3", 0},
		{"soon", 0},
		{"NaN", 0},
		{"999999999", maxRetryAfter},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{now.Add(3 * time.Second).Format(time.RFC850), 3 * time.Second},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		ceil := backoffCap
		if attempt < 16 {
			ceil = min(backoffBase<<attempt, backoffCap)
		}
		for range 50 {
			d := backoff(attempt)
			if d < ceil/2 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, ceil/2, ceil)
			}
		}
	}
}

func TestShortenAndExcerpt(t *testing.T) {
	if got := shorten("  a\n\tb\x00c  ", 10); got != "a bc" {
		t.Errorf("shorten = %q", got)
	}
	long := strings.Repeat("x", 500)
	if got := shorten(long, 10); got != strings.Repeat("x", 10)+"..." {
		t.Errorf("shorten(long) = %q", got)
	}
	if got := excerpt([]byte("<html><body>Bad gateway</body></html>")); got != "" {
		t.Errorf("excerpt(html) = %q, want empty", got)
	}
	if got := excerpt([]byte{0xff, 0xfe, 'a'}); got != "" {
		t.Errorf("excerpt(binary) = %q, want empty", got)
	}
}

// fakeClock drives a FileKey's checks without sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time                      { return c.t }
func (c *fakeClock) advance(d time.Duration)             { c.t = c.t.Add(d) }
func writeFile(t *testing.T, path, s string)             { mustWrite(t, path, s, time.Time{}) }
func writeFileAt(t *testing.T, p, s string, m time.Time) { mustWrite(t, p, s, m) }

func mustWrite(t *testing.T, path, s string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileKeyRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apikey")
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	writeFileAt(t, path, "key-one\n", t0)

	k, err := NewFileKey(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	k.mu.Lock()
	k.now = clock.now
	k.checkedAt = clock.t
	k.mu.Unlock()

	mustKey := func(want string) {
		t.Helper()
		got, err := k.Key()
		if err != nil || got != want {
			t.Fatalf("Key() = %q, %v; want %q", got, err, want)
		}
	}
	mustFail := func() {
		t.Helper()
		got, err := k.Key()
		if err == nil || got != "" {
			t.Fatalf("Key() = %q, %v; want an error and no key", got, err)
		}
		for _, secret := range []string{"key-one", "key-two", "key-333"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q contains a key", err)
			}
		}
	}
	mustKey("key-one")

	// Rotated in place (same size, new mtime): not seen before a second has passed.
	writeFileAt(t, path, "key-two", t0.Add(time.Minute))
	clock.advance(500 * time.Millisecond)
	mustKey("key-one")
	clock.advance(600 * time.Millisecond)
	mustKey("key-two")

	// Emptied: an error, not the last good key.
	writeFileAt(t, path, " \n", t0.Add(2*time.Minute))
	clock.advance(1100 * time.Millisecond)
	mustFail()

	// A new file swapped in by rename (as the kubelet does for a Secret), same size and mtime
	// as the old one.
	writeFileAt(t, path, "key-two", t0.Add(3*time.Minute))
	clock.advance(1100 * time.Millisecond)
	mustKey("key-two")
	tmp := filepath.Join(dir, "apikey.tmp")
	writeFileAt(t, tmp, "key-333", t0.Add(3*time.Minute))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	clock.advance(1100 * time.Millisecond)
	mustKey("key-333")

	// Removed: an error; restored: the key again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.advance(1100 * time.Millisecond)
	mustFail()
	writeFile(t, path, "key-two")
	clock.advance(1100 * time.Millisecond)
	mustKey("key-two")

	// Two lines: refused.
	writeFileAt(t, path, "key-two\nkey-333\n", t0.Add(5*time.Minute))
	clock.advance(1100 * time.Millisecond)
	mustFail()

	if s := k.String(); strings.Contains(s, "key-two") || !strings.Contains(s, path) {
		t.Errorf("String() = %q, want the path and no key", s)
	}
}

func TestNewFileKeyErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewFileKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("NewFileKey(missing) succeeded")
	}
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n\n")
	if _, err := NewFileKey(empty); err == nil {
		t.Error("NewFileKey(empty) succeeded")
	}
	if _, err := NewFileKey(""); err == nil {
		t.Error(`NewFileKey("") succeeded`)
	}
}
