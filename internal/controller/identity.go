package controller

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// recordedID returns the id of the tenant user a CipherscaleUser names: the annotation, or,
// for an object an earlier version of the operator reconciled, status.id. "" when the object
// names none. It says nothing of whether the id is the object's own: see decideIdentity.
func recordedID(u *iamv1alpha1.CipherscaleUser) string {
	if id := u.Annotations[iamv1alpha1.AnnotationUserID]; id != "" {
		return id
	}
	return u.Status.ID
}

// createPending reports whether the object marked a create as in flight and has not recorded
// its answer yet.
func createPending(u *iamv1alpha1.CipherscaleUser) bool {
	return u.Annotations[iamv1alpha1.AnnotationCreatePending] != ""
}

// isPaused reports whether the object asks for no writes.
func isPaused(o client.Object) bool {
	return o.GetAnnotations()[iamv1alpha1.AnnotationPaused] == "true"
}

// patchAnnotations sets (value non-empty) or removes (value empty) annotations of obj with one
// merge patch of its metadata, and nothing when they already hold those values. The patch is
// made on a copy, so that the status obj carries in memory is kept; obj gets the new
// annotations and resourceVersion.
func patchAnnotations(ctx context.Context, kube client.Client, obj client.Object, values map[string]string) error {
	cur := obj.GetAnnotations()
	changed := false
	for k, v := range values {
		if old, ok := cur[k]; (v == "" && ok) || (v != "" && old != v) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	next := obj.DeepCopyObject().(client.Object)
	a := map[string]string{}
	for k, v := range cur {
		a[k] = v
	}
	for k, v := range values {
		if v == "" {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	next.SetAnnotations(a)
	if err := kube.Patch(ctx, next, client.MergeFrom(obj)); err != nil {
		return fmt.Errorf("writing annotations: %w", err)
	}
	obj.SetAnnotations(next.GetAnnotations())
	obj.SetResourceVersion(next.GetResourceVersion())
	return nil
}

// markCreatePending records, before a create is sent, that it is in flight.
func markCreatePending(ctx context.Context, kube client.Client, u *iamv1alpha1.CipherscaleUser, now time.Time) error {
	return patchAnnotations(ctx, kube, u, map[string]string{
		iamv1alpha1.AnnotationCreatePending: now.UTC().Format(time.RFC3339),
	})
}

// recordID records the id of the tenant user in metadata with its proof of identity (clearing a
// pending create) and mirrors it in status.id. Without the tenant's proof key nothing is
// recorded: an id recorded without its proof would not survive a restore.
func recordID(ctx context.Context, kube client.Client, t *tenant.Tenant, tenantKey tenant.Key, u *iamv1alpha1.CipherscaleUser, id string) error {
	k, err := t.ProofKey()
	if err != nil {
		return fmt.Errorf("recording tenant user %s: %w", id, err)
	}
	if err := patchAnnotations(ctx, kube, u, map[string]string{
		iamv1alpha1.AnnotationUserID:        id,
		iamv1alpha1.AnnotationUserIDProof:   proofOf(k, tenantKey, u.Namespace, u.Name, id),
		iamv1alpha1.AnnotationCreatePending: "",
	}); err != nil {
		return fmt.Errorf("recording tenant user %s: %w", id, err)
	}
	u.Status.ID = id
	return nil
}

// proofVersion begins every proof of identity this operator writes.
const proofVersion = "v1"

// kindCipherscaleUser is the kind a proof of identity names.
const kindCipherscaleUser = "CipherscaleUser"

// proofOf returns the proof of identity of the tenant user id for the CipherscaleUser
// namespace/name in the tenant of tenantKey, made with the tenant's proof key k:
// "v1:" + base64url(HMAC-SHA256(k, "v1\x00" + tenant + "\x00" + namespace + "\x00" + kind +
// "\x00" + name + "\x00" + normalized id)). Every field that says whose record it is enters the
// MAC: copied to another object, namespace or tenant, or to another id, it does not verify.
func proofOf(k []byte, tenantKey tenant.Key, namespace, name, id string) string {
	m := hmac.New(sha256.New, k)
	for i, f := range []string{proofVersion, tenantKey.String(), namespace, kindCipherscaleUser, name, plan.NormalizeID(id)} {
		if i > 0 {
			m.Write([]byte{0})
		}
		m.Write([]byte(f))
	}
	return proofVersion + ":" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// proofVerifies reports whether proof is the proof of identity of id for the object.
func proofVerifies(k []byte, tenantKey tenant.Key, u *iamv1alpha1.CipherscaleUser, id, proof string) bool {
	if len(k) == 0 || id == "" || proof == "" {
		return false
	}
	return hmac.Equal([]byte(proof), []byte(proofOf(k, tenantKey, u.Namespace, u.Name, id)))
}

// identity is what an object's own record says about the tenant user it manages. It is decided
// from the object's metadata and status and the tenant's key alone, before anything is read
// from the tenant, recorded or written.
type identity struct {
	// id is the tenant user the object names: the annotation, else status.id (an object an
	// earlier version reconciled). "" when it names none.
	id string
	// own: id is the operator's own record for this object, because status.id (which only the
	// operator writes) names it or the proof of identity verifies. An id that is not its own
	// was written by hand: it is an adoption, and proves nothing.
	own bool
	// resign: own through status.id, and the annotation or its proof is missing or does not
	// verify (an object of an earlier version, or a rotated key): the next record signs again.
	resign bool
	// unchecked: the object carries a proof that could not be checked, because the tenant's key
	// could not be read (keyErr says why). Whether the id is its own is not known.
	unchecked bool
	keyErr    error
}

// decideIdentity decides the object's identity (pure). k is the tenant's proof key, nil with
// keyErr when it could not be had.
func decideIdentity(u *iamv1alpha1.CipherscaleUser, tenantKey tenant.Key, k []byte, keyErr error) identity {
	ann := u.Annotations[iamv1alpha1.AnnotationUserID]
	st := u.Status.ID
	if ann == "" {
		// Recorded in status alone, by an earlier version: the operator's own record.
		return identity{id: st, own: st != "", resign: st != ""}
	}
	idn := identity{id: ann}
	statusAgrees := st != "" && plan.NormalizeID(st) == plan.NormalizeID(ann)
	proof := u.Annotations[iamv1alpha1.AnnotationUserIDProof]
	proofOK := proofVerifies(k, tenantKey, u, ann, proof)
	idn.own = statusAgrees || proofOK
	idn.resign = statusAgrees && !proofOK
	if !idn.own && proof != "" && len(k) == 0 {
		idn.unchecked, idn.keyErr = true, keyErr
		if idn.keyErr == nil {
			idn.keyErr = tenant.ErrNoProofKey
		}
	}
	return idn
}

// refusedClaim reports whether an object's last pass refused it (InvalidTenant,
// AdoptionNotAllowed, NotAllowed, EmailConflict) while it manages nobody (no status.id, which
// only the operator writes): such an object owns no email and declares nobody, so that an object
// a namespace may not have neither squats an email another namespace needs nor shields a user
// from the undeclared-users policy. An object that does manage its user keeps it whatever else
// it is refused (a privileged role asked later does not hand its user to anyone).
func refusedClaim(conds []metav1.Condition, statusID string) bool {
	if statusID != "" {
		return false
	}
	switch readyReason(conds) {
	case iamv1alpha1.ReasonInvalidTenant, iamv1alpha1.ReasonAdoptionNotAllowed,
		iamv1alpha1.ReasonNotAllowed, iamv1alpha1.ReasonEmailConflict:
		return true
	}
	return false
}
