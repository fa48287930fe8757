package onboarding

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// MaxMembersPerObject is the most members one CipherscaleGroupMembership may list (the CRD's
// MaxItems); a larger group is written as several memberships.
const MaxMembersPerObject = 1000

// TenantRef names the tenant object the exported objects refer to; empty for the default tenant.
type TenantRef struct {
	Kind string
	Name string
}

// ExportOptions shapes the exported objects.
type ExportOptions struct {
	// Namespace is written into every object when set; otherwise objects take the namespace of
	// whoever applies them.
	Namespace string
	// Tenant is written as spec.tenantRef when set.
	Tenant TenantRef
	// Memberships writes one Additive CipherscaleGroupMembership per group, with userRefs to the
	// exported CipherscaleUsers, and leaves spec.groups out of the users, so that each
	// (user, group) pair is declared in exactly one place.
	Memberships bool
}

// Document is one exported object, rendered.
type Document struct {
	Kind string
	Name string
	// File is the file name the object gets with -o DIR.
	File string
	YAML []byte
}

// Export renders one CipherscaleUser per tenant user (and, with opts.Memberships, one
// CipherscaleGroupMembership per group), sorted by kind then name. The output depends only on
// the tenant's state: exporting an unchanged tenant twice gives the same bytes.
func Export(users []cipherscale.User, opts ExportOptions) []Document {
	users = WithEmail(users)
	emails := make([]string, 0, len(users))
	for _, u := range users {
		emails = append(emails, u.Email)
	}
	names := UserNames(emails)

	type groupInfo struct {
		id, name string
		members  []string // object names
	}
	groups := map[string]*groupInfo{}

	docs := make([]Document, 0, len(users))
	for i := range users {
		u := &users[i]
		name := names[u.Email]
		for _, g := range u.Groups {
			id := cipherscale.NormalizeID(g.ID)
			gi := groups[id]
			if gi == nil {
				gi = &groupInfo{id: id, name: g.Name}
				groups[id] = gi
			}
			gi.members = append(gi.members, name)
		}
		docs = append(docs, Document{Kind: "CipherscaleUser", Name: name, File: name + ".yaml", YAML: renderUser(u, name, opts)})
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Name < docs[j].Name })
	if !opts.Memberships {
		return docs
	}

	var mdocs []Document
	for _, gi := range groups {
		sort.Strings(gi.members)
		base := GroupName(gi.name, gi.id)
		for part, start := 1, 0; start < len(gi.members); part, start = part+1, start+MaxMembersPerObject {
			end := min(start+MaxMembersPerObject, len(gi.members))
			name := base
			if part > 1 {
				name = fmt.Sprintf("%s-%d", base, part)
			}
			mdocs = append(mdocs, Document{Kind: "CipherscaleGroupMembership", Name: name, File: name + ".membership.yaml",
				YAML: renderMembership(gi.id, gi.name, name, gi.members[start:end], opts)})
		}
	}
	sort.Slice(mdocs, func(i, j int) bool { return mdocs[i].Name < mdocs[j].Name })
	return append(docs, mdocs...)
}

// WithEmail returns the users that have an email: a CipherscaleUser needs one, so a user the
// API reports without one cannot be exported (the caller says so).
func WithEmail(users []cipherscale.User) []cipherscale.User {
	out := make([]cipherscale.User, 0, len(users))
	for _, u := range users {
		if strings.TrimSpace(u.Email) != "" {
			out = append(out, u)
		}
	}
	return out
}

// scalar renders s as a YAML scalar, quoted only when it must be.
func scalar(s string) string {
	if b, err := yaml.Marshal(s); err == nil {
		if out := strings.TrimSuffix(string(b), "\n"); !strings.Contains(out, "\n") {
			return out
		}
	}
	// A multi-line block scalar: a JSON string is a valid double-quoted YAML scalar.
	q, _ := json.Marshal(s)
	return string(q)
}

// comment makes s safe as the text of a one-line YAML comment.
func comment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func header(b *bytes.Buffer, kind, name string, opts ExportOptions) {
	b.WriteString("apiVersion: iam.cipherscale.com/v1alpha1\n")
	b.WriteString("kind: " + kind + "\n")
	b.WriteString("metadata:\n")
	b.WriteString("  name: " + name + "\n")
	if opts.Namespace != "" {
		b.WriteString("  namespace: " + scalar(opts.Namespace) + "\n")
	}
	b.WriteString("spec:\n")
}

func tenantRef(b *bytes.Buffer, opts ExportOptions) {
	if opts.Tenant.Name == "" {
		return
	}
	b.WriteString("  tenantRef:\n")
	b.WriteString("    kind: " + scalar(opts.Tenant.Kind) + "\n")
	b.WriteString("    name: " + scalar(opts.Tenant.Name) + "\n")
}

type named struct{ id, name string }

func idList(b *bytes.Buffer, field string, items []named) {
	sort.Slice(items, func(i, j int) bool {
		if items[i].name != items[j].name {
			return items[i].name < items[j].name
		}
		return items[i].id < items[j].id
	})
	if len(items) == 0 {
		b.WriteString("  " + field + ": []\n")
		return
	}
	b.WriteString("  " + field + ":\n")
	for _, it := range items {
		b.WriteString("    - " + scalar(it.id))
		if c := comment(it.name); c != "" {
			b.WriteString("  # " + c)
		}
		b.WriteByte('\n')
	}
}

func renderUser(u *cipherscale.User, name string, opts ExportOptions) []byte {
	var b bytes.Buffer
	if u.TenantOwner() {
		b.WriteString("# The tenant owner. The operator never deactivates or deletes this user.\n")
	}
	header(&b, "CipherscaleUser", name, opts)
	b.WriteString("  email: " + scalar(u.Email) + "\n")
	tenantRef(&b, opts)
	if u.FirstName != "" {
		b.WriteString("  firstName: " + scalar(u.FirstName) + "\n")
	}
	if u.LastName != "" {
		b.WriteString("  lastName: " + scalar(u.LastName) + "\n")
	}
	if u.Image != "" {
		b.WriteString("  image: " + scalar(u.Image) + "\n")
	}
	switch s := u.Status.Normalized(); s {
	case cipherscale.StatusInactive:
		b.WriteString("  active: false\n")
	case cipherscale.StatusPending:
		b.WriteString("  active: true  # pending: the invitation is not accepted yet\n")
	case cipherscale.StatusActive:
		b.WriteString("  active: true\n")
	default:
		b.WriteString("  active: true  # the API reports the status " + comment(fmt.Sprintf("%q", string(u.Status))) + "; the operator leaves it alone\n")
	}
	roles := make([]named, 0, len(u.Roles))
	for _, r := range u.Roles {
		roles = append(roles, named{cipherscale.NormalizeID(r.ID), r.Name})
	}
	idList(&b, "roles", roles)
	if !opts.Memberships {
		groups := make([]named, 0, len(u.Groups))
		for _, g := range u.Groups {
			groups = append(groups, named{cipherscale.NormalizeID(g.ID), g.Name})
		}
		idList(&b, "groups", groups)
	}
	b.WriteString("  deletionPolicy: Orphan\n")
	return b.Bytes()
}

func renderMembership(id, groupName, name string, members []string, opts ExportOptions) []byte {
	var b bytes.Buffer
	if c := comment(groupName); c != "" {
		b.WriteString("# Group " + c + "\n")
	}
	header(&b, "CipherscaleGroupMembership", name, opts)
	b.WriteString("  groupId: " + scalar(id) + "\n")
	tenantRef(&b, opts)
	b.WriteString("  # policy is left to its default, Additive: this object adds its members and removes nobody.\n")
	b.WriteString("  deletionPolicy: Orphan\n")
	b.WriteString("  members:\n")
	for _, m := range members {
		b.WriteString("    - userRef: {name: " + m + "}\n")
	}
	return b.Bytes()
}

// WriteStream writes the documents as one multi-document YAML stream.
func WriteStream(w *bytes.Buffer, docs []Document) {
	for i, d := range docs {
		if i > 0 {
			w.WriteString("---\n")
		}
		w.Write(d.YAML)
	}
}

// kustomizationFile is the name of the kustomization written with -o DIR.
const kustomizationFile = "kustomization.yaml"

// WriteDir writes one file per document and a kustomization.yaml listing them into dir. Files of
// an earlier export that name objects no longer exported are removed (and returned), so that the
// folder always mirrors the tenant; nothing else in dir is touched.
func WriteDir(dir string, docs []Document) (removed []string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	want := map[string]bool{kustomizationFile: true}
	var k bytes.Buffer
	k.WriteString("# Written by kubectl cipherscale export.\n")
	k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, d := range docs {
		want[d.File] = true
		k.WriteString("  - " + d.File + "\n")
		if err := writeIfChanged(filepath.Join(dir, d.File), d.YAML); err != nil {
			return nil, err
		}
	}
	if err := writeIfChanged(filepath.Join(dir, kustomizationFile), k.Bytes()); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || want[e.Name()] || !strings.HasSuffix(e.Name(), ".yaml") || !isExported(filepath.Join(dir, e.Name())) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// isExported reports whether a file holds an object this package writes.
func isExported(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("apiVersion: iam.cipherscale.com/v1alpha1\nkind: Cipherscale"))
}

func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return os.WriteFile(path, b, 0o644)
}
