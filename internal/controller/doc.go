// Package controller holds the reconcilers of CipherscaleUser and CipherscaleGroupMembership:
// the only place where the operator has side effects. Each reconcile reads the object, observes
// the tenant (the user it recorded by id, else the shared snapshot), asks package plan what to
// do, does it, and writes the status once. The id of a CipherscaleUser's tenant user lives in
// the object's metadata (identity.go); a decision that removes access rests on a read by id.
// What a namespace may do beyond the users created for its objects (adoption, privileged roles,
// Authoritative memberships) is checked before any write (trust.go).
package controller
