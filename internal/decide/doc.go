// Package decide holds the decisions the operator's reconcilers and `kubectl cipherscale plan`
// both make over the objects of one tenant: who owns an email, who declares a (user, group) pair
// and the group changes of a user (decide.go), what a membership may act on and which memberships
// of a group count (memberships.go), the privileged roles and groups a namespace may not touch
// (privileged.go), and what a CipherscaleUser does with a tenant user its email finds
// (adoption.go). It reads through Reader: the manager's cache in the operator
// (internal/controller's world.go), objects in memory in the plugin (Memory, memory.go). Each
// rule is left to the pure functions of internal/plan. It writes nothing.
package decide
