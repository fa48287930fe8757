package onboarding

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

const (
	adminID   = "11111111-1111-4111-8111-111111111111"
	billingID = "44444444-4444-4444-8444-444444444444"
	engID     = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	supportID = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
)

var (
	admin   = cipherscale.Role{ID: adminID, Name: "Admin"}
	billing = cipherscale.Role{ID: billingID, Name: "Billing: \"finance\" # team"}
	eng     = cipherscale.Group{ID: engID, Name: "Engineering"}
	support = cipherscale.Group{ID: supportID, Name: "Support\nline two"}
)

func sampleTenant() []cipherscale.User {
	return []cipherscale.User{
		{ID: "u-owner", Email: "owner@example.com", Status: cipherscale.StatusActive, IsOwner: true, FirstName: "Tenant", LastName: "Owner", Roles: cipherscale.RoleList{admin}},
		{ID: "u-jane", Email: "Jane.Smith@example.com", Status: cipherscale.StatusPending, FirstName: "Jane", LastName: "O'Brien: yes", Roles: cipherscale.RoleList{billing, admin}, Groups: []cipherscale.Group{support, eng}},
		{ID: "u-sam", Email: "sam@example.com", Status: cipherscale.StatusInactive, Image: "https://example.com/sam.png", Groups: []cipherscale.Group{eng}},
		{ID: "u-kai", Email: "kai@example.com", Status: cipherscale.StatusActive, FirstName: "true"},
	}
}

func parse(t *testing.T, doc []byte) Object {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "x.yaml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifests([]string{path}, "ns")
	if err != nil {
		t.Fatalf("the exported document does not load: %v\n%s", err, doc)
	}
	if len(m.Objects) != 1 {
		t.Fatalf("got %d objects from\n%s", len(m.Objects), doc)
	}
	return m.Objects[0]
}

func ptr[T any](v T) *T { return &v }

func TestExportWritesTheTenantAsItIs(t *testing.T) {
	docs := Export(sampleTenant(), ExportOptions{})
	if len(docs) != 4 {
		t.Fatalf("got %d documents, want 4", len(docs))
	}
	byEmail := map[string]*iamv1alpha1.CipherscaleUser{}
	for i, d := range docs {
		if i > 0 && docs[i-1].Name >= d.Name {
			t.Errorf("documents are not sorted by name: %q before %q", docs[i-1].Name, d.Name)
		}
		if bytes.Contains(d.YAML, []byte("status")) || bytes.Contains(d.YAML, []byte("adoptionPolicy")) || bytes.Contains(d.YAML, []byte("creationTimestamp")) {
			t.Errorf("%s holds status or defaulted noise:\n%s", d.Name, d.YAML)
		}
		o := parse(t, d.YAML)
		if o.User.Name != d.Name || d.File != d.Name+".yaml" {
			t.Errorf("name %q, file %q, document name %q", o.User.Name, d.File, d.Name)
		}
		byEmail[o.User.Spec.Email] = o.User
	}
	want := map[string]iamv1alpha1.CipherscaleUserSpec{
		"owner@example.com": {Email: "owner@example.com", FirstName: ptr("Tenant"), LastName: ptr("Owner"), Active: ptr(true),
			Roles: &[]string{adminID}, Groups: &[]string{}, DeletionPolicy: iamv1alpha1.DeletionPolicyOrphan},
		"Jane.Smith@example.com": {Email: "Jane.Smith@example.com", FirstName: ptr("Jane"), LastName: ptr("O'Brien: yes"), Active: ptr(true),
			Roles: &[]string{adminID, billingID}, Groups: &[]string{engID, supportID}, DeletionPolicy: iamv1alpha1.DeletionPolicyOrphan},
		"sam@example.com": {Email: "sam@example.com", Image: ptr("https://example.com/sam.png"), Active: ptr(false),
			Roles: &[]string{}, Groups: &[]string{engID}, DeletionPolicy: iamv1alpha1.DeletionPolicyOrphan},
		"kai@example.com": {Email: "kai@example.com", FirstName: ptr("true"), Active: ptr(true),
			Roles: &[]string{}, Groups: &[]string{}, DeletionPolicy: iamv1alpha1.DeletionPolicyOrphan},
	}
	for email, spec := range want {
		got := byEmail[email]
		if got == nil {
			t.Errorf("%s was not exported", email)
			continue
		}
		if d := cmp.Diff(spec, got.Spec); d != "" {
			t.Errorf("%s (-want +got):\n%s", email, d)
		}
	}
	var owner, jane []byte
	for _, d := range docs {
		switch {
		case strings.HasPrefix(d.Name, "owner-"):
			owner = d.YAML
		case strings.HasPrefix(d.Name, "jane-"):
			jane = d.YAML
		}
	}
	if !bytes.HasPrefix(owner, []byte("# The tenant owner.")) {
		t.Errorf("the owner is not marked:\n%s", owner)
	}
	for _, line := range []string{
		"    - " + adminID + "  # Admin\n",
		"    - " + billingID + "  # Billing: \"finance\" # team\n",
		"    - " + supportID + "  # Support line two\n",
		"  active: true  # pending: the invitation is not accepted yet\n",
	} {
		if !bytes.Contains(jane, []byte(line)) {
			t.Errorf("missing line %q in\n%s", line, jane)
		}
	}
}

func TestExportIsByteIdenticalWhateverTheOrder(t *testing.T) {
	a := sampleTenant()
	b := sampleTenant()
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	var sa, sb bytes.Buffer
	WriteStream(&sa, Export(a, ExportOptions{Memberships: true}))
	WriteStream(&sb, Export(b, ExportOptions{Memberships: true}))
	if !bytes.Equal(sa.Bytes(), sb.Bytes()) {
		t.Errorf("two exports of the same tenant differ:\n%s\n----\n%s", sa.Bytes(), sb.Bytes())
	}
}

func TestExportMembershipsDeclareEachPairOnce(t *testing.T) {
	docs := Export(sampleTenant(), ExportOptions{Memberships: true, Namespace: "team-a", Tenant: TenantRef{Kind: KindClusterTenant, Name: "prod"}})
	var ms []*iamv1alpha1.CipherscaleGroupMembership
	userByName := map[string]*iamv1alpha1.CipherscaleUser{}
	for _, d := range docs {
		o := parse(t, d.YAML)
		if o.Tenant != (TenantRef{Kind: KindClusterTenant, Name: "prod"}) {
			t.Errorf("%s: tenantRef %+v", d.Name, o.Tenant)
		}
		if o.User != nil {
			if o.User.Namespace != "team-a" || o.User.Spec.Groups != nil {
				t.Errorf("%s: namespace %q, groups %v; want team-a and groups left out", d.Name, o.User.Namespace, o.User.Spec.Groups)
			}
			userByName[o.User.Name] = o.User
			continue
		}
		if !strings.HasSuffix(d.File, ".membership.yaml") {
			t.Errorf("membership file %q", d.File)
		}
		ms = append(ms, o.Membership)
	}
	if len(ms) != 2 {
		t.Fatalf("got %d memberships, want one per group (2)", len(ms))
	}
	pairs := map[string][]string{}
	for _, m := range ms {
		// Additive is the CRD's default: left out, as the API server fills it in.
		if m.Spec.Policy != "" || m.Spec.DeletionPolicy != iamv1alpha1.MembershipDeletionPolicyOrphan {
			t.Errorf("%s: policy %q, deletionPolicy %q; want the default (Additive) and Orphan", m.Name, m.Spec.Policy, m.Spec.DeletionPolicy)
		}
		for _, mem := range m.Spec.Members {
			u := userByName[mem.UserRef.Name]
			if u == nil {
				t.Errorf("%s names %q, which was not exported", m.Name, mem.UserRef.Name)
				continue
			}
			pairs[m.Spec.GroupID] = append(pairs[m.Spec.GroupID], u.Spec.Email)
		}
	}
	want := map[string][]string{engID: {"Jane.Smith@example.com", "sam@example.com"}, supportID: {"Jane.Smith@example.com"}}
	if d := cmp.Diff(want, pairs); d != "" {
		t.Errorf("pairs (-want +got):\n%s", d)
	}
}

func TestExportSplitsAGroupLargerThanAMembershipHolds(t *testing.T) {
	var users []cipherscale.User
	for i := range MaxMembersPerObject + 5 {
		users = append(users, cipherscale.User{ID: fmt.Sprintf("id-%d", i), Email: fmt.Sprintf("u%04d@example.com", i),
			Status: cipherscale.StatusActive, Groups: []cipherscale.Group{eng}})
	}
	var members int
	var objects int
	for _, d := range Export(users, ExportOptions{Memberships: true}) {
		if d.Kind == "CipherscaleGroupMembership" {
			objects++
			members += bytes.Count(d.YAML, []byte("userRef"))
		}
	}
	if objects != 2 || members != MaxMembersPerObject+5 {
		t.Errorf("%d memberships with %d members in all; want 2 with %d", objects, members, MaxMembersPerObject+5)
	}
}

func TestWriteDirMirrorsTheTenant(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.yaml")
	if err := os.WriteFile(keep, []byte("not: an export\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	docs := Export(sampleTenant(), ExportOptions{})
	if _, err := WriteDir(dir, docs); err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if !bytes.Contains(k, []byte("  - "+d.File+"\n")) {
			t.Errorf("kustomization.yaml does not list %s", d.File)
		}
	}
	// A user leaves the tenant: their file goes, other files stay.
	removed, err := WriteDir(dir, Export(sampleTenant()[1:], ExportOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || !strings.HasPrefix(removed[0], "owner-") {
		t.Errorf("removed %v, want the owner's file", removed)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file the export did not write was touched: %v", err)
	}
}
