package controller

// The tenant's API key Secret: read by name, never listed or cached, used only by consent.

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// maxKeyBytes bounds an API key read from a Secret: a key is short.
const maxKeyBytes = 4096

// SecretReader reads API keys from Secrets with r, which should be the manager's API reader
// (a get of one Secret by name, never a cache of all). A Secret that is missing, that does not
// consent to the tenant reading it (annotation cipherscale.com/allowed-tenants), that the
// operator may not read, or whose key is empty, too long or holds control characters wraps
// tenant.ErrInvalidSecret. No error contains the key, and a Secret that does not consent is
// not described (which keys it has) beyond what a missing one would be.
func SecretReader(r client.Reader) tenant.ReadSecretFunc {
	return func(ctx context.Context, ref tenant.SecretRef) (string, error) {
		s := &corev1.Secret{}
		unusable := func() error {
			return fmt.Errorf("%w: Secret %s/%s does not exist, or does not allow %s to use it: "+
				"the Secret needs the annotation %s: %q (a comma-separated list), set by someone who may update it",
				tenant.ErrInvalidSecret, ref.Namespace, ref.Name, ref.For, iamv1alpha1.AnnotationAllowedTenants, consentName(ref.For))
		}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
			switch {
			case apierrors.IsNotFound(err):
				return "", unusable()
			case apierrors.IsForbidden(err):
				return "", fmt.Errorf("%w: the operator may not read Secret %s/%s", tenant.ErrInvalidSecret, ref.Namespace, ref.Name)
			}
			return "", fmt.Errorf("reading Secret %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if !consents(s, ref) {
			return "", unusable()
		}
		raw, ok := s.Data[ref.Key]
		if !ok {
			return "", fmt.Errorf("%w: Secret %s/%s has no key %q", tenant.ErrInvalidSecret, ref.Namespace, ref.Name, ref.Key)
		}
		v := strings.TrimSpace(string(raw))
		switch {
		case v == "":
			return "", fmt.Errorf("%w: key %q of Secret %s/%s is empty", tenant.ErrInvalidSecret, ref.Key, ref.Namespace, ref.Name)
		case len(v) > maxKeyBytes:
			return "", fmt.Errorf("%w: key %q of Secret %s/%s is longer than %d bytes", tenant.ErrInvalidSecret, ref.Key, ref.Namespace, ref.Name, maxKeyBytes)
		case strings.ContainsFunc(v, unicode.IsControl):
			return "", fmt.Errorf("%w: key %q of Secret %s/%s holds control characters (more than one line?)", tenant.ErrInvalidSecret, ref.Key, ref.Namespace, ref.Name)
		}
		return v, nil
	}
}

// consentName is how a Secret's annotation cipherscale.com/allowed-tenants names the tenant
// of key: "ClusterCipherscaleTenant/<name>" or "CipherscaleTenant/<name>".
func consentName(key tenant.Key) string { return key.Kind + "/" + key.Name }

// consents reports whether the Secret allows the tenant ref.For to use it: its annotation
// cipherscale.com/allowed-tenants names the tenant exactly (no wildcard), and a CipherscaleTenant
// only from the Secret's own namespace.
func consents(s *corev1.Secret, ref tenant.SecretRef) bool {
	if ref.For.Kind == "" || ref.For.Name == "" {
		return false
	}
	if ref.For.Kind == tenant.KindNamespaced && ref.For.Namespace != s.Namespace {
		return false
	}
	want := consentName(ref.For)
	for _, v := range strings.Split(s.Annotations[iamv1alpha1.AnnotationAllowedTenants], ",") {
		if strings.TrimSpace(v) == want {
			return true
		}
	}
	return false
}
