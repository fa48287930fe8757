// Package simulator is a strict, in-memory Cipherscale tenant served over net/http: it implements
// every endpoint and pinned rule of the Users API contract (docs/cipherscale-api.md) so that
// the client, the controllers and the demo can run without the real service. It also owns the
// simulator's control surface under /_sim/ (seeding roles, groups and users, accepting
// invitations, fault injection, rate limits, per-route statistics and reset), which needs no API key.
package simulator
