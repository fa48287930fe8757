// Package cipherscale is the client of the Cipherscale Users API: its types, a typed HTTP client
// with rate limiting and retries, and the classification of its errors. It implements the contract
// pinned in docs/cipherscale-api.md and imports nothing from Kubernetes. The API is not
// trusted: every answer is checked against the bounds of limits.go before it is returned, and the
// user list is read as a stream, capped, and read again when it shifted under the read.
package cipherscale
