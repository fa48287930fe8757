package cipherscale

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// KeySource supplies the API key. The client asks it before every request, so a source may
// change its key (rotation) without a restart. Its errors must not contain the key.
type KeySource interface {
	Key() (string, error)
}

// StaticKey is a fixed API key. It prints as "<redacted>" with every fmt verb.
type StaticKey string

// Key returns the key without surrounding whitespace, or an error when it is empty.
func (k StaticKey) Key() (string, error) {
	s := strings.TrimSpace(string(k))
	if s == "" {
		return "", errors.New("cipherscale: the API key is empty")
	}
	return s, nil
}

// String hides the key.
func (k StaticKey) String() string { return redactedKey }

// GoString hides the key from %#v.
func (k StaticKey) GoString() string { return redactedKey }

// Format hides the key from every fmt verb.
func (k StaticKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedKey) }

// MarshalText hides the key from encoders (JSON, YAML).
func (k StaticKey) MarshalText() ([]byte, error) { return []byte(redactedKey), nil }

// LogValue hides the key from log/slog.
func (k StaticKey) LogValue() slog.Value { return slog.StringValue(redactedKey) }

const redactedKey = "<redacted>"

// fileKeyCheckInterval is how often a FileKey looks at its file at most.
const fileKeyCheckInterval = time.Second

// maxKeyFileBytes bounds what a FileKey reads: a key is short.
const maxKeyFileBytes = 64 << 10

// FileKey is an API key read from a file, such as a key of a Secret mounted in the pod. It looks
// at the file at most once per second and reads it again when it changed (another file, mtime or
// size), so a rotated key is used without a restart. An empty or unreadable file is an error:
// the last good key is not used in its place.
type FileKey struct {
	path string
	now  func() time.Time

	mu        sync.Mutex
	key       string
	err       error
	info      os.FileInfo // of the file the key was read from; nil after an error
	checkedAt time.Time
}

// NewFileKey reads the key of the file at path. It fails when the file is unreadable or empty.
func NewFileKey(path string) (*FileKey, error) {
	if path == "" {
		return nil, errors.New("cipherscale: the API key file path is empty")
	}
	k := &FileKey{path: path, now: time.Now}
	if _, err := k.Key(); err != nil {
		return nil, err
	}
	return k, nil
}

// Key returns the key of the file, reading the file again if it changed.
func (k *FileKey) Key() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.checkedAt.IsZero() && now.Sub(k.checkedAt) < fileKeyCheckInterval && !now.Before(k.checkedAt) {
		return k.key, k.err
	}
	k.checkedAt = now
	fi, err := os.Stat(k.path)
	if err != nil {
		k.fail(fmt.Errorf("cipherscale: reading the API key file: %w", err))
		return "", k.err
	}
	if k.err == nil && k.info != nil && os.SameFile(fi, k.info) &&
		fi.ModTime().Equal(k.info.ModTime()) && fi.Size() == k.info.Size() {
		return k.key, nil
	}
	key, err := readKeyFile(k.path)
	if err != nil {
		k.fail(err)
		return "", err
	}
	k.key, k.err, k.info = key, nil, fi
	return key, nil
}

func (k *FileKey) fail(err error) {
	k.key, k.err, k.info = "", err, nil
}

// String names the file, never the key.
func (k *FileKey) String() string { return "FileKey(" + k.path + ")" }

func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cipherscale: reading the API key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("cipherscale: reading the API key file %s: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return "", fmt.Errorf("cipherscale: the API key file %s is larger than %d bytes", path, maxKeyFileBytes)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("cipherscale: the API key file %s is empty", path)
	}
	if strings.ContainsFunc(key, isCTL) {
		return "", fmt.Errorf("cipherscale: the API key file %s holds control characters (more than one line?)", path)
	}
	return key, nil
}
