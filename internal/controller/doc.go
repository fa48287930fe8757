// Package controller holds the reconcilers of CipherscaleUser and CipherscaleGroupMembership:
// the only place where the operator has side effects. Each reconcile reads the object, observes
// the tenant through the shared snapshot, asks package plan what to do, does it, and writes the
// status once.
package controller
