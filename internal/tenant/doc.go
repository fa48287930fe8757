// Package tenant is the operator's view of one Cipherscale tenant: a snapshot of every user
// (tenant.go), held compactly (compact.go), read page by page and shared by all reconciles (one
// refresh at a time, at most one resync interval old; between full reads, only the users
// changed since the last read: delta.go), kept current by the responses of the writes made
// through it (writes.go), lookups by email and reads of single users by id (reads.go), and a
// batcher that gathers concurrent creates into requests of up to 100 users (batch.go).
// The snapshot says where to look; only a read by id says that a user is gone. A Registry holds
// the set of tenants the operator serves, each with its own client (rate limiter and 429
// pause), snapshot and batcher, its API key read from a Secret (secretkey.go), and its removal
// budget (budget.go; its saved record, budget_record.go; allowances, budget_allow.go), keyed by
// the tenant object (ClusterCipherscaleTenant "default" for objects that name none).
package tenant
