// Package cipherscale is the client of the Cipherscale Users API: its types, a typed HTTP client
// with rate limiting and retries, and the classification of its errors. It implements the contract
// pinned in docs/cipherscale-api.md and imports nothing from Kubernetes.
package cipherscale
