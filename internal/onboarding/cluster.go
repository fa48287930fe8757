package onboarding

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// The tenant kinds (tenants.md), read untyped.
const (
	KindClusterTenant    = "ClusterCipherscaleTenant"
	KindNamespacedTenant = "CipherscaleTenant"
)

func timeFromUnixNano(n int64) metav1.Time { return metav1.NewTime(time.Unix(0, n)) }

// Cluster is the cluster of the current kubeconfig, read only.
type Cluster struct {
	Client client.Reader
	// Namespace is the kubeconfig context's namespace ("default" when it sets none).
	Namespace string
}

// Connect loads the kubeconfig (path, or $KUBECONFIG and ~/.kube/config when empty) and its
// context (or the current one).
func Connect(path, context string) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.QPS = -1 // a handful of list calls; leave fairness to the API server
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return &Cluster{Client: c, Namespace: ns}, nil
}

// ParseTenantRef parses KIND/NAME, KIND being ClusterCipherscaleTenant or CipherscaleTenant
// (case-insensitive, or their short forms cluster/namespaced).
func ParseTenantRef(s string) (TenantRef, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return TenantRef{}, fmt.Errorf("--tenant must be KIND/NAME, such as %s/prod, not %q", KindClusterTenant, s)
	}
	switch strings.ToLower(kind) {
	case strings.ToLower(KindClusterTenant), "clustercipherscaletenants":
		return TenantRef{Kind: KindClusterTenant, Name: name}, nil
	case strings.ToLower(KindNamespacedTenant), "cipherscaletenants":
		return TenantRef{Kind: KindNamespacedTenant, Name: name}, nil
	}
	return TenantRef{}, fmt.Errorf("--tenant: the kind must be %s or %s, not %q", KindClusterTenant, KindNamespacedTenant, kind)
}

// TenantConnection is where a tenant is and how to read its key.
type TenantConnection struct {
	URL string
	// Key is the API key from the tenant's Secret. Never print it.
	Key string
	// Trust is what the tenant object allows the namespaces (spec.adoption, spec.privileged).
	Trust TenantTrust
}

// ReadTenant reads a tenant object's URL and its key from the Secret it names. Errors name the
// objects and fields involved, never the Secret's data.
func (c *Cluster) ReadTenant(ctx context.Context, ref TenantRef, namespace string) (*TenantConnection, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: iamv1alpha1.GroupVersion.Group, Version: iamv1alpha1.GroupVersion.Version, Kind: ref.Kind})
	objKey := client.ObjectKey{Name: ref.Name}
	what := ref.Kind + " " + ref.Name
	if ref.Kind == KindNamespacedTenant {
		objKey.Namespace = namespace
		what = ref.Kind + " " + namespace + "/" + ref.Name
	}
	if err := c.Client.Get(ctx, objKey, u); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("reading %s: the cluster does not know the kind %s (is the operator's CRD installed?)", what, ref.Kind)
		}
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	url, _, _ := unstructured.NestedString(u.Object, "spec", "url")
	secretNS, _, _ := unstructured.NestedString(u.Object, "spec", "apiKeySecretRef", "namespace")
	secretName, _, _ := unstructured.NestedString(u.Object, "spec", "apiKeySecretRef", "name")
	secretKey, _, _ := unstructured.NestedString(u.Object, "spec", "apiKeySecretRef", "key")
	if ref.Kind == KindNamespacedTenant {
		secretNS = namespace
	}
	if secretName == "" || secretNS == "" {
		return nil, fmt.Errorf("%s: spec.apiKeySecretRef does not name a Secret", what)
	}
	if secretKey == "" {
		secretKey = "api-key"
	}
	var s corev1.Secret
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: secretNS, Name: secretName}, &s); err != nil {
		return nil, fmt.Errorf("reading the API key of %s from Secret %s/%s: %w", what, secretNS, secretName, err)
	}
	key := strings.TrimSpace(string(s.Data[secretKey]))
	if key == "" {
		return nil, fmt.Errorf("the Secret %s/%s of %s has no key %q, or it is empty", secretNS, secretName, what, secretKey)
	}
	trust, err := c.trustOf(ctx, ref, namespace, u)
	if err != nil {
		return nil, err
	}
	return &TenantConnection{URL: url, Key: key, Trust: trust}, nil
}

// ErrNoCRDs is returned by Objects when the cluster does not know the operator's kinds.
var ErrNoCRDs = errors.New("the cluster does not know the CipherscaleUser kind (the operator's CRDs are not installed)")

// Objects lists the cluster's CipherscaleUsers and CipherscaleGroupMemberships in namespace
// (every namespace when empty).
func (c *Cluster) Objects(ctx context.Context, namespace string) ([]Object, error) {
	var out []Object
	for _, kind := range []string{"CipherscaleUserList", "CipherscaleGroupMembershipList"} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(iamv1alpha1.GroupVersion.WithKind(kind))
		var opts []client.ListOption
		if namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if err := c.Client.List(ctx, list, opts...); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				return nil, ErrNoCRDs
			}
			return nil, fmt.Errorf("listing %s: %w", strings.TrimSuffix(kind, "List"), err)
		}
		for i := range list.Items {
			o, ok, err := FromUnstructured(&list.Items[i])
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, o)
			}
		}
	}
	return out, nil
}
