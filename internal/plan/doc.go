// Package plan holds the operator's decisions as pure functions: the membership rule that says
// which (user, group) pairs to add or remove, and the diff of a CipherscaleUser's spec against the
// live tenant user that yields the calls to make, and the trust policy (trust.go) that says what
// a namespace may do beyond managing the users created for it, and caps invitations. Nothing
// here does I/O; the controllers act.
package plan
