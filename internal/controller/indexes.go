package controller

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// Field indexes of the manager's cache. Each value is scoped to the object's tenant (see
// scoped): email ownership, group scopes and the membership rule hold per tenant.
const (
	// indexUserEmail indexes CipherscaleUsers by lower-cased email.
	indexUserEmail = "cipherscale.spec.email"
	// indexUserGroup indexes CipherscaleUsers that set spec.groups by each group id.
	indexUserGroup = "cipherscale.spec.groups"
	// indexMembershipGroup indexes CipherscaleGroupMemberships by group id.
	indexMembershipGroup = "cipherscale.spec.groupId"
	// indexMembershipMember indexes CipherscaleGroupMemberships by memberKey of each member.
	indexMembershipMember = "cipherscale.spec.members"
)

// scoped prefixes an index value with the tenant's key, so that the same email or group id in
// two tenants are two values.
func scoped(k tenant.Key, value string) string { return k.String() + "|" + value }

// tenantOf returns the key of the tenant a CipherscaleUser or membership names.
func tenantOf(o client.Object) tenant.Key { return tenantKeyOf(o.GetNamespace(), tenantRefOf(o)) }

// memberKeyEmail and memberKeyRef are the values of indexMembershipMember.
func memberKeyEmail(email string) string { return "email:" + cipherscale.NormalizeEmail(email) }
func memberKeyRef(namespace, name string) string {
	return "ref:" + namespace + "/" + name
}

// setupIndexes registers the field indexes both controllers use, once per manager.
func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &iamv1alpha1.CipherscaleUser{}, indexUserEmail, func(o client.Object) []string {
		return []string{scoped(tenantOf(o), cipherscale.NormalizeEmail(o.(*iamv1alpha1.CipherscaleUser).Spec.Email))}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &iamv1alpha1.CipherscaleUser{}, indexUserGroup, func(o client.Object) []string {
		u := o.(*iamv1alpha1.CipherscaleUser)
		if u.Spec.Groups == nil {
			return nil
		}
		return scopedAll(tenantOf(u), plan.SortedSet(*u.Spec.Groups))
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &iamv1alpha1.CipherscaleGroupMembership{}, indexMembershipGroup, func(o client.Object) []string {
		return []string{scoped(tenantOf(o), plan.NormalizeID(o.(*iamv1alpha1.CipherscaleGroupMembership).Spec.GroupID))}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &iamv1alpha1.CipherscaleGroupMembership{}, indexMembershipMember, func(o client.Object) []string {
		m := o.(*iamv1alpha1.CipherscaleGroupMembership)
		keys := make([]string, 0, len(m.Spec.Members))
		for _, mem := range m.Spec.Members {
			switch {
			case mem.UserRef != nil:
				keys = append(keys, memberKeyRef(m.Namespace, mem.UserRef.Name))
			case mem.Email != "":
				keys = append(keys, memberKeyEmail(mem.Email))
			}
		}
		return scopedAll(tenantOf(m), keys)
	})
}

func scopedAll(k tenant.Key, values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = scoped(k, v)
	}
	return out
}
