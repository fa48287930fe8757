package main

import (
	"bytes"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// qaTenant returns the objects of the demo's second tenant: its namespace, the Secret holding
// its key, and the CipherscaleTenant and CipherscaleUsers of the namespace qaNamespace that the
// tenants sample declares (its ClusterCipherscaleTenant needs a real key, and is left out), the
// tenant's url set to the second simulator and its resync to 30s; then two more users of that
// tenant.
func qaTenant(samplePath, url string) ([]client.Object, error) {
	data, err := os.ReadFile(samplePath)
	if err != nil {
		return nil, err
	}
	objs := []client.Object{
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: qaNamespace}},
	}
	var secret, tenantName string
	var fromSample []client.Object
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", samplePath, err)
		}
		if len(u.Object) == 0 || u.GetNamespace() != qaNamespace {
			continue
		}
		switch u.GetKind() {
		case "CipherscaleTenant":
			if err := unstructured.SetNestedField(u.Object, url, "spec", "url"); err != nil {
				return nil, err
			}
			// Read every 30s, as the demo's default tenant is, so that its status follows.
			if err := unstructured.SetNestedField(u.Object, "30s", "spec", "resyncInterval"); err != nil {
				return nil, err
			}
			secret, _, _ = unstructured.NestedString(u.Object, "spec", "apiKeySecretRef", "name")
			tenantName = u.GetName()
		case "CipherscaleUser":
		default:
			continue
		}
		fromSample = append(fromSample, u)
	}
	if secret == "" || len(fromSample) < 2 {
		return nil, fmt.Errorf("%s declares no CipherscaleTenant with a Secret and users in namespace %s", samplePath, qaNamespace)
	}
	objs = append(objs, &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: qaNamespace, Name: secret,
			// The tenant may use the Secret: the operator sends no key a Secret did not allow.
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/" + tenantName}},
		StringData: map[string]string{"api-key": qaKey},
	})
	objs = append(objs, fromSample...)
	for _, name := range []string{"sam-lee", "qa-tester"} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("iam.cipherscale.com/v1alpha1")
		u.SetKind("CipherscaleUser")
		u.SetNamespace(qaNamespace)
		u.SetName(name)
		_ = unstructured.SetNestedField(u.Object, map[string]any{
			"email":     name + "@example.com",
			"tenantRef": map[string]any{"kind": "CipherscaleTenant", "name": "qa"},
		}, "spec")
		objs = append(objs, u)
	}
	return objs, nil
}
