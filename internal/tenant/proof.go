package tenant

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// proofKeyLabel separates the proof key from any other use of the API key.
const proofKeyLabel = "cipherscale-operator user-id-proof"

// ErrNoProofKey is returned by ProofKey when the tenant has no API key to derive it from.
var ErrNoProofKey = errors.New("the tenant has no API key to sign or verify proofs of identity with")

// ProofKey returns the key of the tenant's proofs of identity (the annotation
// cipherscale.com/user-id-proof): HMAC-SHA256(apiKey, "cipherscale-operator user-id-proof").
// Only whoever holds the tenant's API key can make a proof that verifies; a namespace user who
// may not read the Secret cannot. The key is never logged or returned in an error.
func (t *Tenant) ProofKey() ([]byte, error) {
	if t == nil || t.opts.Key == nil {
		return nil, ErrNoProofKey
	}
	k, err := t.opts.Key.Key()
	if err != nil {
		return nil, fmt.Errorf("reading the API key for the proof of identity: %w", err)
	}
	if k == "" {
		return nil, ErrNoProofKey
	}
	m := hmac.New(sha256.New, []byte(k))
	m.Write([]byte(proofKeyLabel))
	return m.Sum(nil), nil
}
