package onboarding

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/decide"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// Annotations of the identity design (identity.md) that say an object already has its user or
// has a create in flight. Read as plain strings: plan understands them whether or not the
// operator it runs beside writes them yet.
const (
	annotationUserID        = "cipherscale.com/user-id"
	annotationCreatePending = "cipherscale.com/create-pending"
	// Reasons of the identity design, spelled as the operator spells them.
	reasonEmailMismatch  = "EmailMismatch"
	reasonAmbiguousEmail = "AmbiguousEmail"
)

// Input is what a plan is computed from.
type Input struct {
	// Users and Memberships are every object of the tenant as the cluster would hold them once
	// the manifests are applied: the manifests' objects over the cluster's.
	Users       []*iamv1alpha1.CipherscaleUser
	Memberships []*iamv1alpha1.CipherscaleGroupMembership
	// Show selects the objects to report, by "Kind/namespace/name"; nil reports all.
	Show map[string]bool
	// Tenant is every user of the tenant.
	Tenant []cipherscale.User
	// DefaultDeletionPolicy is the tenant's spec.defaultDeletionPolicy.
	DefaultDeletionPolicy iamv1alpha1.DeletionPolicy
	// Trust is the tenant's trust policy (plan.TenantTrust of the tenant object's
	// spec.adoption and spec.privileged). The zero value is the tenant's default: no namespace
	// may adopt users, grant privileged roles, manage privileged groups or be Authoritative.
	Trust plan.TrustPolicy
	// TenantUsable reports whether objects of a namespace may use the tenant (the
	// namespaceSelector of a ClusterCipherscaleTenant); nil: every namespace may.
	TenantUsable func(namespace string) bool
	// GroupRoles holds, by normalized group id, what members of the group inherit through their
	// groups (GET /tenants/users/{id}/roles?groupsOnly=true of a member). A group it does not
	// hold is privileged unless Trust lists the privileged groups, as the operator counts a
	// group whose roles it cannot tell.
	GroupRoles map[string][][]cipherscale.Role
}

// Kind of outcome of one object.
type Outcome int

// Outcomes, from quiet to loud.
const (
	// Unchanged: the operator would make no call and the object would be Ready.
	Unchanged Outcome = iota
	// Changes: the operator would act.
	Changes
	// Blocked: the operator would do nothing and the object would not be Ready (a conflict, a
	// stall, a pause): a person must act.
	Blocked
)

// ObjectPlan is what the operator would do with one object.
type ObjectPlan struct {
	Kind, Namespace, Name string
	// Email is the CipherscaleUser's email.
	Email   string
	Outcome Outcome
	// Summary is one line in the words of the events: "adopt tenant user ...", "roles +1 -0".
	Summary string
	// Details are further lines: which roles, groups and members.
	Details []string
}

// Result is the plan of every reported object.
type Result struct {
	Objects []ObjectPlan
	// Undeclared are the emails of tenant users no object of the tenant declares (sorted).
	Undeclared []string
}

// Counts returns how many objects would change and how many are blocked.
func (r Result) Counts() (unchanged, changes, blocked int) {
	for _, o := range r.Objects {
		switch o.Outcome {
		case Unchanged:
			unchanged++
		case Changes:
			changes++
		case Blocked:
			blocked++
		}
	}
	return
}

// planner carries the simulated tenant through the objects: each object's planned writes are
// applied to it, so that the objects planned later see them, as the operator's later reconciles
// would.
type planner struct {
	in Input
	// world is the operator's decisions (internal/decide) over the objects in memory.
	world   decide.World
	mem     *decide.Memory
	byEmail map[string]*cipherscale.User
	byID    map[string]*cipherscale.User
	// ambiguous holds the emails that several tenant users share, differing only in case.
	ambiguous map[string]bool
	names     map[string]string // role and group names by id
	// hasUser is true for the CipherscaleUsers that would be tied to a tenant user (a member
	// by userRef waits for that).
	hasUser map[string]bool
}

// Plan computes what the operator would do with each object, with the pure functions of
// internal/plan, writing nothing.
func Plan(in Input) Result {
	mem := decide.NewMemory(deref(in.Users), deref(in.Memberships))
	mem.Usable, mem.Inherited, mem.Types = in.TenantUsable, in.GroupRoles, roleTypes(in.Tenant)
	p := &planner{in: in, world: decide.World{R: mem, Trust: in.Trust}, mem: mem,
		byEmail: map[string]*cipherscale.User{}, byID: map[string]*cipherscale.User{}, ambiguous: map[string]bool{},
		names: map[string]string{}, hasUser: map[string]bool{}}
	if p.in.DefaultDeletionPolicy == "" {
		p.in.DefaultDeletionPolicy = iamv1alpha1.DeletionPolicyDelete
	}
	for i := range in.Tenant {
		u := copyUser(&in.Tenant[i])
		e := cipherscale.NormalizeEmail(u.Email)
		if p.byEmail[e] != nil {
			p.ambiguous[e] = true
		}
		p.byEmail[e] = u
		p.byID[cipherscale.NormalizeID(u.ID)] = u
		for _, r := range u.Roles {
			p.names[cipherscale.NormalizeID(r.ID)] = r.Name
		}
		for _, g := range u.Groups {
			p.names[cipherscale.NormalizeID(g.ID)] = g.Name
		}
	}
	var res Result
	users, memberships := mem.Users(), mem.Memberships()
	for i := range users {
		u := &users[i]
		op := p.planUser(u)
		if in.Show == nil || in.Show["CipherscaleUser/"+key(u.Namespace, u.Name)] {
			res.Objects = append(res.Objects, op)
		}
	}
	for i := range memberships {
		m := &memberships[i]
		op := p.planMembership(m)
		if in.Show == nil || in.Show["CipherscaleGroupMembership/"+key(m.Namespace, m.Name)] {
			res.Objects = append(res.Objects, op)
		}
	}
	res.Undeclared = p.undeclared()
	return res
}

func key(namespace, name string) string { return namespace + "/" + name }

func same(a, b metav1.Object) bool {
	return a.GetNamespace() == b.GetNamespace() && a.GetName() == b.GetName()
}

func deref[T any](in []*T) []T {
	out := make([]T, len(in))
	for i, o := range in {
		out[i] = *o
	}
	return out
}

// roleTypes are the role types the tenant's users show, by normalized id (as the operator's
// snapshot knows them).
func roleTypes(users []cipherscale.User) map[string]cipherscale.RoleType {
	out := map[string]cipherscale.RoleType{}
	for _, u := range users {
		for _, r := range u.Roles {
			if r.Type != "" {
				out[cipherscale.NormalizeID(r.ID)] = r.Type
			}
		}
	}
	return out
}

// must is for the decisions over objects in memory, which read nothing that can fail.
func must[T any](v T, err error) T {
	if err != nil {
		panic("in-memory objects: " + err.Error())
	}
	return v
}

func copyUser(u *cipherscale.User) *cipherscale.User {
	c := *u
	c.Roles = append(cipherscale.RoleList(nil), u.Roles...)
	c.Groups = append([]cipherscale.Group(nil), u.Groups...)
	return &c
}

func (p *planner) name(id string) string {
	if n := p.names[plan.NormalizeID(id)]; n != "" {
		return n + " (" + plan.NormalizeID(id) + ")"
	}
	return plan.NormalizeID(id)
}

// usable reports whether objects of the namespace may use the tenant.
func (p *planner) usable(namespace string) bool {
	return must(p.world.R.TenantUsable(context.Background(), namespace))
}

func must3[T, U, V any](a T, b U, c V, err error) (T, U, V) {
	if err != nil {
		panic("in-memory objects: " + err.Error())
	}
	return a, b, c
}

func must2[T, U any](a T, b U, err error) (T, U) {
	if err != nil {
		panic("in-memory objects: " + err.Error())
	}
	return a, b
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), "...")
}

// undeclared returns the emails of tenant users that no CipherscaleUser names and no membership
// lists as an email member.
func (p *planner) undeclared() []string {
	declared := map[string]bool{}
	for _, u := range p.mem.Users() {
		declared[cipherscale.NormalizeEmail(u.Spec.Email)] = true
	}
	for _, m := range p.mem.Memberships() {
		for _, mem := range m.Spec.Members {
			if mem.UserRef == nil {
				declared[cipherscale.NormalizeEmail(mem.Email)] = true
			}
		}
	}
	var out []string
	for i := range p.in.Tenant {
		if e := cipherscale.NormalizeEmail(p.in.Tenant[i].Email); !declared[e] {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// Render writes the plan for a person: one line per object that would change or is blocked,
// its details indented, then a summary line.
func Render(w io.Writer, r Result) {
	unchanged, changes, blocked := r.Counts()
	for _, o := range r.Objects {
		if o.Outcome == Unchanged {
			continue
		}
		mark := "~"
		if o.Outcome == Blocked {
			mark = "!"
		}
		who := o.Kind + " " + key(o.Namespace, o.Name)
		if o.Email != "" {
			who += " (" + o.Email + ")"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, who, o.Summary)
		for _, d := range o.Details {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
	if n := len(r.Undeclared); n > 0 {
		fmt.Fprintf(w, "  %d tenant users are declared by no object and are left alone: %s\n", n, strings.Join(first(r.Undeclared, 20), ", "))
	}
	if changes == 0 && blocked == 0 {
		fmt.Fprintf(w, "No changes: the tenant matches all %d objects.\n", unchanged)
		return
	}
	fmt.Fprintf(w, "Plan: %d objects to change, %d blocked (a person must act), %d unchanged.\n", changes, blocked, unchanged)
}
