package controller

import (
	"context"
	"fmt"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// The trust rules: a namespace is not the tenant. Whoever may write a CipherscaleUser or a
// membership in some namespace may manage the users the operator creates for those objects,
// and nothing more, unless the tenant's TrustPolicy allows that namespace to adopt users or to
// manage privileged roles and Authoritative memberships. A refusal writes nothing.

// adoptionRefusedMessage says why a user the operator did not create for the object is left
// alone.
func adoptionRefusedMessage(ns string) string {
	return fmt.Sprintf("The tenant already has a user with this email that the operator did not create for this object, and namespace %s may not adopt existing users (allowed by the manager's --adoption-namespaces); nothing was written", ns)
}

// mayManage reports whether the object may manage the tenant user u, found through its recorded
// id or pending create mark: always from a namespace that may adopt; elsewhere only when the
// record is the operator's own (status.id, which only the operator writes, names the user), or u
// is still pending and was created after the object (a create whose answer was lost). The
// annotations alone prove nothing: whoever may edit the object may write them.
func (r *UserReconciler) mayManage(obj *iamv1alpha1.CipherscaleUser, statusID string, u *cipherscale.User) bool {
	if r.Trust.MayAdopt(obj.Namespace) {
		return true
	}
	if statusID != "" && plan.NormalizeID(statusID) == plan.NormalizeID(u.ID) {
		return true
	}
	return u.Status.Normalized() == cipherscale.StatusPending && plan.CreatedFor(obj.CreationTimestamp.Time, u)
}

// refuseAdoption stalls an object whose namespace may not adopt the user it found.
func (r *UserReconciler) refuseAdoption(obj *iamv1alpha1.CipherscaleUser) ctrl.Result {
	return r.stall(obj, iamv1alpha1.ReasonAdoptionNotAllowed, adoptionRefusedMessage(obj.Namespace), jitter(r.ResyncInterval))
}

// refusedRoles checks spec.roles against the privileged roles: held is the user's current direct
// roles (nil before the user is found). It returns the message of a refusal, "" when allowed.
func (r *UserReconciler) refusedRoles(ctx context.Context, obj *iamv1alpha1.CipherscaleUser, held []cipherscale.Role) (string, error) {
	if obj.Spec.Roles == nil || r.Trust.Privileged.Allows(obj.Namespace) {
		return "", nil
	}
	types, err := r.Tenant.RoleTypes(ctx)
	if err != nil {
		return "", err
	}
	refused := r.Trust.RefusedRoles(obj.Namespace, obj.Spec.Roles, held, types)
	if len(refused) == 0 {
		return "", nil
	}
	return fmt.Sprintf("spec.roles grants or removes the privileged roles %s, which namespace %s may not manage (allowed by the manager's --privileged-namespaces; privileged roles are --privileged-roles, by default those of type OWNER or ADMIN and those whose type the operator cannot see); nothing was written",
		strings.Join(refused, ", "), obj.Namespace), nil
}

// authoritativeRefusedMessage says why an Authoritative membership does nothing.
func authoritativeRefusedMessage(ns string) string {
	return fmt.Sprintf("An Authoritative membership removes members nothing declares, and namespace %s may not have Authoritative memberships (allowed by the manager's --privileged-namespaces); set policy Additive, or ask for the namespace to be allowed; nothing was written", ns)
}

// maxSentTimes bounds status.invitation.sentTimes (the CRD's maxItems).
const maxSentTimes = 100

// keptSends is how many send times status.invitation.sentTimes keeps: enough to apply the cap.
func (r *UserReconciler) keptSends() int {
	if r.MaxInvitationsPerDay <= 0 || r.MaxInvitationsPerDay > maxSentTimes {
		return maxSentTimes
	}
	return r.MaxInvitationsPerDay
}

// emailMembersRefusedMessage says why a membership whose email members no CipherscaleUser
// manages does nothing.
func emailMembersRefusedMessage(ns string, n int) string {
	return fmt.Sprintf("%d email members have no CipherscaleUser: they are tenant users the operator did not create for this namespace, and namespace %s may not adopt users (allowed by the manager's --adoption-namespaces); declare them with CipherscaleUsers, or ask for the namespace to be allowed; nothing was written", n, ns)
}
