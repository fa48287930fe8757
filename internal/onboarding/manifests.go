package onboarding

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// Object is a CipherscaleUser or CipherscaleGroupMembership read from a manifest or the
// cluster, with the tenant it names (spec.tenantRef, read untyped).
type Object struct {
	User       *iamv1alpha1.CipherscaleUser
	Membership *iamv1alpha1.CipherscaleGroupMembership
	Tenant     TenantRef
	// Source is the file it came from, for messages; "" for the cluster.
	Source string
}

// Key is "Kind/namespace/name".
func (o Object) Key() string {
	if o.User != nil {
		return "CipherscaleUser/" + key(o.User.Namespace, o.User.Name)
	}
	return "CipherscaleGroupMembership/" + key(o.Membership.Namespace, o.Membership.Name)
}

// Manifests is what LoadManifests found.
type Manifests struct {
	Objects []Object
	// Ignored counts documents of other kinds (a kustomization.yaml, a Namespace...).
	Ignored int
}

// LoadManifests reads files and directories (recursively; .yaml, .yml and .json files) holding
// one or more YAML or JSON documents. Objects without a namespace get namespace.
func LoadManifests(paths []string, namespace string) (*Manifests, error) {
	out := &Manifests{}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if err := loadFile(p, namespace, out); err != nil {
				return nil, err
			}
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					return loadFile(path, namespace, out)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	seen := map[string]string{}
	for _, o := range out.Objects {
		if prev, dup := seen[o.Key()]; dup {
			return nil, fmt.Errorf("%s is declared twice: in %s and %s", o.Key(), prev, o.Source)
		}
		seen[o.Key()] = o.Source
	}
	return out, nil
}

func loadFile(path, namespace string, out *Manifests) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for i := 1; ; i++ {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if u.Object == nil {
			continue
		}
		o, ok, err := FromUnstructured(&u)
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if !ok {
			out.Ignored++
			continue
		}
		o.Source = path
		if o.User != nil && o.User.Namespace == "" {
			o.User.Namespace = namespace
		}
		if o.Membership != nil && o.Membership.Namespace == "" {
			o.Membership.Namespace = namespace
		}
		out.Objects = append(out.Objects, o)
	}
}

// FromUnstructured converts an object of the operator's kinds; ok is false for other kinds.
func FromUnstructured(u *unstructured.Unstructured) (Object, bool, error) {
	gvk := u.GroupVersionKind()
	if gvk.Group != iamv1alpha1.GroupVersion.Group {
		return Object{}, false, nil
	}
	if gvk.Version != iamv1alpha1.GroupVersion.Version {
		return Object{}, false, fmt.Errorf("%s %s: version %s is not known to this plugin", gvk.Kind, u.GetName(), gvk.Version)
	}
	var o Object
	o.Tenant.Kind, _, _ = unstructured.NestedString(u.Object, "spec", "tenantRef", "kind")
	o.Tenant.Name, _, _ = unstructured.NestedString(u.Object, "spec", "tenantRef", "name")
	var target any
	switch gvk.Kind {
	case "CipherscaleUser":
		o.User = &iamv1alpha1.CipherscaleUser{}
		target = o.User
	case "CipherscaleGroupMembership":
		o.Membership = &iamv1alpha1.CipherscaleGroupMembership{}
		target = o.Membership
	default:
		return Object{}, false, nil
	}
	if u.GetName() == "" {
		return Object{}, false, fmt.Errorf("a %s has no metadata.name", gvk.Kind)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, target); err != nil {
		return Object{}, false, fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
	}
	if o.User != nil && o.User.Spec.Email == "" {
		return Object{}, false, fmt.Errorf("CipherscaleUser %s has no spec.email", u.GetName())
	}
	if o.Membership != nil && o.Membership.Spec.GroupID == "" {
		return Object{}, false, fmt.Errorf("CipherscaleGroupMembership %s has no spec.groupId", u.GetName())
	}
	return o, true, nil
}

// Overlay returns the objects as the cluster would hold them once the manifests are applied:
// a manifest's spec, labels and annotations over the cluster's object of the same name (whose
// creation time, status and deletion state stay), and manifests not in the cluster as new
// objects, created now (after every existing one). The second result names the manifests'
// objects, the ones a plan reports.
func Overlay(cluster []Object, manifests []Object, now int64) ([]Object, map[string]bool) {
	byKey := map[string]int{}
	out := append([]Object(nil), cluster...)
	for i, o := range out {
		byKey[o.Key()] = i
	}
	show := map[string]bool{}
	for _, m := range manifests {
		show[m.Key()] = true
		i, ok := byKey[m.Key()]
		if !ok {
			setCreated(m, now)
			out = append(out, m)
			continue
		}
		c := out[i]
		switch {
		case m.User != nil:
			u := c.User.DeepCopy()
			u.Spec = m.User.Spec
			u.Labels = mergeMap(u.Labels, m.User.Labels)
			u.Annotations = mergeMap(u.Annotations, m.User.Annotations)
			out[i] = Object{User: u, Tenant: m.Tenant, Source: m.Source}
		default:
			g := c.Membership.DeepCopy()
			g.Spec = m.Membership.Spec
			g.Labels = mergeMap(g.Labels, m.Membership.Labels)
			g.Annotations = mergeMap(g.Annotations, m.Membership.Annotations)
			out[i] = Object{Membership: g, Tenant: m.Tenant, Source: m.Source}
		}
	}
	return out, show
}

func setCreated(o Object, unixNano int64) {
	t := timeFromUnixNano(unixNano)
	if o.User != nil {
		o.User.CreationTimestamp = t
	} else {
		o.Membership.CreationTimestamp = t
	}
}

func mergeMap(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// orDefault is the tenant an object without tenantRef uses: ClusterCipherscaleTenant/default.
func orDefault(ref TenantRef) TenantRef {
	if ref == (TenantRef{}) {
		return TenantRef{Kind: KindClusterTenant, Name: "default"}
	}
	return ref
}

// ForTenant keeps the objects that name the tenant ref (a namespaced CipherscaleTenant serves
// only its own namespace). An object without tenantRef, and a zero ref (--api-url), are
// ClusterCipherscaleTenant/default.
func ForTenant(objs []Object, ref TenantRef, tenantNamespace string) (users []*iamv1alpha1.CipherscaleUser, memberships []*iamv1alpha1.CipherscaleGroupMembership, other int) {
	for _, o := range objs {
		ns := ""
		if o.User != nil {
			ns = o.User.Namespace
		} else {
			ns = o.Membership.Namespace
		}
		match := orDefault(o.Tenant) == orDefault(ref) && (ref.Kind != KindNamespacedTenant || ns == tenantNamespace)
		if !match {
			other++
			continue
		}
		if o.User != nil {
			users = append(users, o.User)
		} else {
			memberships = append(memberships, o.Membership)
		}
	}
	return users, memberships, other
}
