package onboarding

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

)

func TestLoadManifestsReadsAnExportedFolder(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteDir(dir, Export(sampleTenant(), ExportOptions{Memberships: true})); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifests([]string{dir}, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 6 || m.Ignored != 1 {
		t.Errorf("got %d objects and %d ignored documents; want 6 (4 users, 2 memberships) and 1 (the kustomization)", len(m.Objects), m.Ignored)
	}
	for _, o := range m.Objects {
		if !strings.Contains(o.Key(), "/team-a/") {
			t.Errorf("%s did not get the default namespace", o.Key())
		}
	}
	// The same object twice is an error that names both files.
	var b bytes.Buffer
	WriteStream(&b, Export(sampleTenant()[:1], ExportOptions{}))
	if err := os.WriteFile(filepath.Join(dir, "copy.yml"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifests([]string{dir}, "team-a"); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("a duplicate object: error %v", err)
	}
}

func TestOverlayKeepsWhatTheClusterKnows(t *testing.T) {
	tenant := sampleTenant()
	cluster := exported(t, tenant, ExportOptions{})
	manifests := exported(t, tenant, ExportOptions{})
	for _, o := range manifests {
		o.User.Status.ID = ""
		o.User.CreationTimestamp = metav1.Time{}
		o.User.Spec.Active = ptr(false)
	}
	fresh := manifests[0].User.DeepCopy()
	fresh.Name = "fresh"
	manifests = append(manifests, Object{User: fresh})
	now := time.Unix(99999, 0).UnixNano()
	objs, show := Overlay(cluster[1:], manifests, now)
	if len(objs) != 5 || len(show) != 5 {
		t.Fatalf("got %d objects, %d shown; want 5 and 5", len(objs), len(show))
	}
	for _, o := range objs {
		u := o.User
		if *u.Spec.Active {
			t.Errorf("%s: the manifest's spec was not taken", u.Name)
		}
		inCluster := u.Name != "fresh" && u.Name != cluster[0].User.Name
		if inCluster && (u.Status.ID == "" || u.CreationTimestamp.UnixNano() >= now) {
			t.Errorf("%s: the cluster's status and creation time were lost", u.Name)
		}
		if !inCluster && (u.Status.ID != "" || u.CreationTimestamp.UnixNano() != now) {
			t.Errorf("%s: a new object should be created now with no status, got %v %q", u.Name, u.CreationTimestamp, u.Status.ID)
		}
	}
}

func TestParseTenantRef(t *testing.T) {
	tests := []struct {
		in   string
		want TenantRef
		err  bool
	}{
		{"ClusterCipherscaleTenant/prod", TenantRef{KindClusterTenant, "prod"}, false},
		{"clustercipherscaletenant/prod", TenantRef{KindClusterTenant, "prod"}, false},
		{"CipherscaleTenant/qa", TenantRef{KindNamespacedTenant, "qa"}, false},
		{"prod", TenantRef{}, true},
		{"Secret/prod", TenantRef{}, true},
		{"CipherscaleTenant/", TenantRef{}, true},
		{"CipherscaleTenant/a/b", TenantRef{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTenantRef(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseTenantRef(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

// pages serves a tenant in pages, optionally growing by one user after the first page.
