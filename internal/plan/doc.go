// Package plan holds the operator's decisions as pure functions: the membership rule that says
// which (user, group) pairs to add or remove, and the diff of a CipherscaleUser's spec against the
// live tenant user that yields the calls to make. Nothing here does I/O; the controllers act.
package plan
