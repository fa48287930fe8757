// Package controller holds the operator's reconcilers, the only place where it has side effects,
// and Setup (setup.go), which wires them into a manager with one registry of tenants and one
// event recorder. It owns four reconcilers of three types:
//
//   - UserReconciler brings tenant users to their CipherscaleUsers. user_controller.go holds
//     Reconcile and the guards; a pass observes the tenant user, writing nothing
//     (user_observe.go), creates it when there is none or records or adopts the one found
//     (user_create.go, creates.go for creates batched in flight), updates it to the spec
//     (user_update.go) or carries out the deletion policy (user_delete.go);
//     user_watches.go registers it. The id of a user's tenant user lives in the object's
//     metadata (identity.go); a decision that removes access rests on a read by id; removals
//     spend the tenant's removal budget (removal.go); invitations count against the tenant's
//     cap (invitations.go).
//   - MembershipReconciler brings group memberships to their CipherscaleGroupMemberships:
//     membership_controller.go (Reconcile, guards), membership_members.go (observe, add, remove
//     the undeclared, report), membership_delete.go, membership_watches.go.
//   - TenantReconciler (tenant_controller.go), run twice, once per tenant kind
//     (ClusterCipherscaleTenant, CipherscaleTenant): keeps each tenant object in the registry of
//     tenants, reads its key from a Secret that consents (tenant_secret.go), checks it with its
//     own read and then shares its objects' snapshot (tenant_read.go), reports its users in its
//     status, restores and saves its removal
//     budget (budget_record.go; allowance.go wakes the removals a grant releases) and its
//     invitation record, applies its undeclared-users policy (undeclared.go) and holds it with a
//     finalizer while objects use it. tenant_waker.go wakes it when removals start or stop
//     waiting.
//
// Every CipherscaleUser and membership names its tenant with spec.tenantRef, and
// ClusterCipherscaleTenant "default" when it names none. A reconcile of either works on a scope
// (scope.go), never on a copy of its reconciler: TenantResolver.connect (tenantref.go) resolves
// the tenant once (whether the object may use it, its trust policy: trust.go, its removal
// budget), and one statusScope holds the object's status, written once when the pass ends, and
// the ways a pass ends short of done (fail, stall, failDeleting, with a warning event when the
// reason changes). No worker waits on a tenant (turns.go). Each pass reads the object, observes
// the tenant, asks packages decide (over the cache: world.go) and plan what to do, does it, and
// writes the status (status.go, conditions.go; errors.go classifies failures once). Metrics are
// in metrics*.go, the field indexes in indexes.go, the cache's trimming in cache.go.
package controller
