// Adoption: what a CipherscaleUser does with a tenant user that has its email and that the
// object does not record by id: manage it as the user its own create made, adopt it, or leave
// it alone. Pure: the operator and `kubectl cipherscale plan` both call it.

package decide

import (
	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// Found is the decision of UserFound.
type Found int

const (
	// FoundAdopt: the object adopts the user (its namespace may adopt, its adoptionPolicy
	// allows it).
	FoundAdopt Found = iota
	// FoundOwnCreate: the user of a create the object marked before sending it (the answer was
	// lost): the object's own, whatever its adoptionPolicy.
	FoundOwnCreate
	// FoundRefused: an adoption the object's namespace may not make (AdoptionNotAllowed).
	FoundRefused
	// FoundNeverAdopt: the object's adoptionPolicy is Never (AlreadyExists).
	FoundNeverAdopt
	// FoundPaused: the object is paused: the user is compared with the spec, not recorded.
	FoundPaused
	// FoundPausedUnseen: the object is paused, and may not manage the user: nothing of that
	// user is shown.
	FoundPausedUnseen
)

// UserFound decides what CipherscaleUser u does with live, the tenant user with its email,
// found by email. paused: u asks for no writes; pending: u carries a create-pending mark. Trust
// comes first: a user the object may not manage is not shown, even while paused.
func UserFound(trust plan.TrustPolicy, u *iamv1alpha1.CipherscaleUser, live *cipherscale.User, paused, pending bool) Found {
	mayAdopt := trust.MayAdopt(u.Namespace)
	switch {
	case paused && !mayAdopt && (!pending || !MayManage(trust, u, live)):
		return FoundPausedUnseen
	case paused:
		// Nothing is recorded while paused: recording is the start of managing the user.
		return FoundPaused
	case pending && !MayManage(trust, u, live):
		// A mark written by hand on an object that did not create the user is an adoption.
		return FoundRefused
	case pending:
		return FoundOwnCreate
	case !mayAdopt:
		return FoundRefused
	case u.Spec.AdoptionPolicy == iamv1alpha1.AdoptionPolicyNever:
		return FoundNeverAdopt
	default:
		return FoundAdopt
	}
}

// MayManage reports whether CipherscaleUser u may manage the tenant user live, found through
// its pending create mark: always from a namespace that may adopt; elsewhere only when live is
// still pending and was created after the object (a create whose answer was lost). The mark
// alone proves nothing: whoever may edit the object may write it.
func MayManage(trust plan.TrustPolicy, u *iamv1alpha1.CipherscaleUser, live *cipherscale.User) bool {
	if trust.MayAdopt(u.Namespace) {
		return true
	}
	return live.Status.Normalized() == cipherscale.StatusPending && plan.CreatedFor(u.CreationTimestamp.Time, live)
}
