package crd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

const (
	kindUser       = "CipherscaleUser"
	kindMembership = "CipherscaleGroupMembership"
)

// object is an unstructured object of one of the two kinds, with the given spec (none if nil).
func object(kind, namespace, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}

// spec parses a YAML snippet into a spec map.
func spec(s string) map[string]any {
	m := map[string]any{}
	Expect(yaml.Unmarshal([]byte(s), &m)).To(Succeed(), "spec YAML: %s", s)
	return m
}

// with returns a copy of m with key set to v.
func with(m map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	out[key] = v
	return out
}

// uuids returns n distinct, well-formed UUIDs.
func uuids(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	return out
}

// emailMembers returns n members, each declared by a distinct email.
func emailMembers(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"email": fmt.Sprintf("member%d@example.com", i)}
	}
	return out
}

// readObjects decodes every object of a multi-document YAML file.
func readObjects(file string) []*unstructured.Unstructured {
	data, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred(), "decoding %s", file)
		if len(u.Object) == 0 { // a document of comments only
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

// getUser reads a CipherscaleUser afresh with the typed client.
func getUser(ctx context.Context, namespace, name string) *v1alpha1.CipherscaleUser {
	u := &v1alpha1.CipherscaleUser{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u)).To(Succeed())
	return u
}

// getRawSpec reads an object's spec as the API server stores it, with no Go types in between.
func getRawSpec(ctx context.Context, kind, namespace, name string) map[string]any {
	u := object(kind, namespace, name, nil)
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	s, found, err := unstructured.NestedMap(u.Object, "spec")
	Expect(err).NotTo(HaveOccurred())
	Expect(found).To(BeTrue())
	return s
}
