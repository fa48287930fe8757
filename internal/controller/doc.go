// Package controller holds the operator's reconcilers, the only place where it has side effects,
// and Setup, which wires them into a manager. It owns:
//
//   - UserReconciler (user_controller.go): brings tenant users to their CipherscaleUsers; the id
//     of a user's tenant user lives in the object's metadata (identity.go), a decision that
//     removes access rests on a read by id, and removals spend the tenant's removal budget
//     (removal.go, invitations.go for the invitation cap, creates.go for batched creates).
//   - MembershipReconciler (membership_controller.go): brings group memberships to their
//     CipherscaleGroupMemberships.
//   - TenantReconciler (tenant_controller.go), run twice, once per tenant kind
//     (ClusterCipherscaleTenant, CipherscaleTenant): keeps each tenant object in the registry of
//     tenants, checks its key, reports its users in its status, restores and saves its removal
//     budget (budget_record.go), applies its undeclared-users policy (undeclared.go) and holds
//     it with a finalizer while objects use it. tenant_waker.go wakes it when removals start or
//     stop waiting.
//
// Every CipherscaleUser and membership names its tenant with spec.tenantRef, and
// ClusterCipherscaleTenant "default" when it names none; TenantResolver (tenantref.go) finds it
// and says whether the object may use it, and what its namespace may do beyond the users created
// for it (trust.go). Each reconcile reads the object, observes the tenant, asks package plan what
// to do, does it, and writes the status once (status.go, conditions.go, errors.go classifies
// failures once). Metrics are in metrics*.go, the field indexes in indexes.go, the cache's
// trimming in cache.go.
package controller
