package controller

import (
	"context"
	"fmt"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// The trust rules: a namespace is not the tenant. Whoever may write a CipherscaleUser or a
// membership in some namespace may manage the users the operator creates for those objects,
// and nothing more, unless the TrustPolicy of the object's tenant (the tenant object's spec:
// TenantResolver.Trust) allows that
// namespace to adopt users or to manage privileged roles and Authoritative memberships. A
// refusal writes nothing.

// adoptionRefusedMessage says why a user the operator did not create for the object is left
// alone.
func adoptionRefusedMessage(key tenant.Key, ns string) string {
	return fmt.Sprintf("The tenant already has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users (allowed by %s); nothing was written", ns, adoptionSource(key))
}

// adoptionSource names what allows a namespace to adopt in the tenant of key.
func adoptionSource(key tenant.Key) string {
	if key.Kind == tenant.KindNamespaced {
		return fmt.Sprintf("CipherscaleTenant %q, to its own namespace", key.Name)
	}
	return fmt.Sprintf("the spec.adoption.namespaceSelector of ClusterCipherscaleTenant %q", key.Name)
}

// privilegedSource names what allows a namespace privileged roles and Authoritative memberships
// in the tenant of key; roles adds what the privileged roles are.
func privilegedSource(key tenant.Key, roles bool) string {
	src := fmt.Sprintf("the spec.privileged.namespaceSelector of %s %q", key.Kind, key.Name)
	if roles {
		src += "; privileged roles are its spec.privileged.roles, by default those of type OWNER or ADMIN and those whose type the operator cannot see"
	}
	return src
}

// unverifiedIDMessage says why an object whose annotation names a tenant user that is not its
// own record does nothing. Nothing was read: the message says nothing of that user.
func unverifiedIDMessage(key tenant.Key, ns string) string {
	return fmt.Sprintf("The annotation %s names a tenant user that the operator did not record for this object (status.id does not name it and the annotation %s does not verify), and namespace %s may not adopt existing users (allowed by %s); nothing was read or written: remove the annotation to manage a new user",
		iamv1alpha1.AnnotationUserID, iamv1alpha1.AnnotationUserIDProof, ns, adoptionSource(key))
}

// pausedUnseenMessage says what a paused object that may not see the user with its email shows.
func pausedUnseenMessage(key tenant.Key, ns string) string {
	return fmt.Sprintf("Paused: the tenant has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users (allowed by %s): nothing of that user is shown, and no writes are made",
		ns, adoptionSource(key))
}

// refuseAdoption stalls an object whose namespace may not adopt the user it found.
func (s *userScope) refuseAdoption(obj *iamv1alpha1.CipherscaleUser) ctrl.Result {
	return s.stall(iamv1alpha1.ReasonAdoptionNotAllowed, adoptionRefusedMessage(s.key, obj.Namespace))
}

// identityOf decides the object's identity with its tenant's proof key (decideIdentity).
func (s *userScope) identityOf(obj *iamv1alpha1.CipherscaleUser) identity {
	k, err := s.tenant.ProofKey()
	return decideIdentity(obj, s.key, k, err)
}

// record records the id of the object's tenant user with its proof (recordID).
func (s *userScope) record(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, id string) error {
	return recordID(ctx, s.Kube, s.tenant, s.key, obj, id)
}

// refusedRoles checks spec.roles against the privileged roles: held is the user's current direct
// roles (nil before the user is found). It returns the message of a refusal, "" when allowed.
func (s *userScope) refusedRoles(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, held []cipherscale.Role) (string, error) {
	refused, err := s.world().shared().RefusedRoles(ctx, obj.Namespace, obj.Spec.Roles, held)
	if err != nil || len(refused) == 0 {
		return "", err
	}
	return fmt.Sprintf("spec.roles grants or removes the privileged roles %s, which namespace %s may not manage (allowed by %s); nothing was written",
		strings.Join(refused, ", "), obj.Namespace, privilegedSource(s.key, true)), nil
}

// refusedGroups checks spec.groups, and the groups the membership rule would take the user out
// of (removed), against the privileged groups. It returns the message of a refusal, "" when
// allowed.
func (s *userScope) refusedGroups(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, removed []string) (string, error) {
	refused, err := s.world().shared().RefusedGroups(ctx, obj.Namespace, obj.Spec.Groups, removed)
	if err != nil || len(refused) == 0 {
		return "", err
	}
	return privilegedGroupRefusedMessage(s.key, obj.Namespace, "spec.groups puts the user in, or takes them out of, the groups "+strings.Join(refused, ", ")+": each"), nil
}

// world is what the user reconciler's pass reads of its tenant's objects.
func (s *userScope) world() world {
	return world{kube: s.Kube, trust: s.trust, tenant: s.key, api: s.tenant}
}

// authoritativeRefusedMessage says why an Authoritative membership does nothing.
func authoritativeRefusedMessage(key tenant.Key, ns string) string {
	return fmt.Sprintf("An Authoritative membership removes members nothing declares, and namespace %s may not have Authoritative memberships (allowed by %s); set policy Additive, or ask for the namespace to be allowed; nothing was written", ns, privilegedSource(key, false))
}

// emailMembersRefusedMessage says why a membership leaves alone its n email members that no
// CipherscaleUser manages.
func emailMembersRefusedMessage(key tenant.Key, ns string, n int) string {
	return fmt.Sprintf("%d email members have no CipherscaleUser: they are tenant users the operator did not create for this namespace, and namespace %s may not adopt users (allowed by %s); declare them with CipherscaleUsers, or ask for the namespace to be allowed; nothing is written for them (see status.members)", n, ns, adoptionSource(key))
}

// managedMembersRefusedMessage says why a membership leaves alone its n members that another
// namespace's CipherscaleUser manages (and its undeclared members that it may not adopt). It
// names neither those objects nor their namespaces.
func managedMembersRefusedMessage(key tenant.Key, ns string, n, undeclared int) string {
	msg := fmt.Sprintf("%d members are users that a CipherscaleUser of another namespace manages, and namespace %s may not change their groups (allowed by %s)", n, ns, privilegedSource(key, false))
	if undeclared > 0 {
		msg += fmt.Sprintf("; %d email members have no CipherscaleUser, and namespace %s may not adopt users (allowed by %s)", undeclared, ns, adoptionSource(key))
	}
	return msg + "; name this namespace's own CipherscaleUsers, or ask for the namespace to be allowed; nothing is written for them (see status.members)"
}

// privilegedGroupRefusedMessage says why an object of the namespace does nothing with a
// privileged group; what names the group or groups.
func privilegedGroupRefusedMessage(key tenant.Key, ns, what string) string {
	return fmt.Sprintf("%s is privileged, which namespace %s may not manage (allowed by %s; privileged groups are the tenant's spec.privileged.groups, by default those whose members inherit a privileged role through them, and those the operator cannot tell, such as a group without members); nothing was written", what, ns, privilegedSource(key, false))
}
