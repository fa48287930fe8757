package devenv

import (
	"context"
	"fmt"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// NamespaceUser returns a client for a person whose only rights are a Role in namespace ns over
// the given resources of the operator's API group (all verbs, no status subresource), used
// through impersonation of the user "mallory-<ns>": the attacker of the trust specs. admin
// creates the Role and its binding; it waits until the Role is in force, and checks that the
// person may not read another namespace.
func NamespaceUser(ctx context.Context, admin client.Client, cfg *rest.Config, ns string, resources ...string) (client.Client, error) {
	name := "mallory-" + ns
	if err := admin.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cipherscale-editor"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{iamv1alpha1.GroupVersion.Group},
			Resources: resources,
			Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"},
		}},
	}); err != nil {
		return nil, fmt.Errorf("creating the Role of %s: %w", name, err)
	}
	if err := admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cipherscale-editor"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "cipherscale-editor"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: name}},
	}); err != nil {
		return nil, fmt.Errorf("binding the Role of %s: %w", name, err)
	}
	ic := rest.CopyConfig(cfg)
	ic.Impersonate = rest.ImpersonationConfig{UserName: name}
	c, err := client.New(ic, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = c.List(ctx, &iamv1alpha1.CipherscaleUserList{}, client.InNamespace(ns))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the Role of %s is not in force after 10s: %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	other := "default"
	if ns == other {
		other = "kube-system"
	}
	if err := c.List(ctx, &iamv1alpha1.CipherscaleUserList{}, client.InNamespace(other)); !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("%s must not read namespace %s, and the list answered %w", name, other, err)
	}
	return c, nil
}
