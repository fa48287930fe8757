package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

func proofKeyOf(t *testing.T, apiKey string) []byte {
	t.Helper()
	k, err := tenant.New(nil, tenant.Options{Key: cipherscale.StaticKey(apiKey)}).ProofKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func objWith(ns, name, id, proof, statusID string) *iamv1alpha1.CipherscaleUser {
	u := &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}}}
	if id != "" {
		u.Annotations[iamv1alpha1.AnnotationUserID] = id
	}
	if proof != "" {
		u.Annotations[iamv1alpha1.AnnotationUserIDProof] = proof
	}
	u.Status.ID = statusID
	return u
}

func TestProofOfIdentity(t *testing.T) {
	k := proofKeyOf(t, "the-api-key")
	prod := tenant.ClusterKey("prod")
	const id = "0A1B2C3D-0000-4000-8000-000000000001"
	proof := proofOf(k, prod, "team-a", "alice", id)
	if !strings.HasPrefix(proof, "v1:") || strings.ContainsAny(proof, "+/=") {
		t.Fatalf("proof %q: want v1: and unpadded base64url", proof)
	}
	// The id is compared normalized: the API may answer in either case.
	if proofOf(k, prod, "team-a", "alice", strings.ToLower(id)) != proof {
		t.Fatal("the proof depends on the id's case")
	}
	own := objWith("team-a", "alice", id, proof, "")
	if idn := decideIdentity(own, prod, k, nil); !idn.own || idn.resign || idn.id != id {
		t.Fatalf("restored object with its proof: %+v", idn)
	}
	for name, u := range map[string]*iamv1alpha1.CipherscaleUser{
		"copied to another namespace": objWith("evil", "alice", id, proof, ""),
		"copied to another name":      objWith("team-a", "mallory", id, proof, ""),
		"another id":                  objWith("team-a", "alice", "0a1b2c3d-0000-4000-8000-000000000002", proof, ""),
		"written by hand":             objWith("team-a", "alice", id, "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""),
		"no proof":                    objWith("team-a", "alice", id, "", ""),
	} {
		if idn := decideIdentity(u, prod, k, nil); idn.own || idn.unchecked {
			t.Errorf("%s: %+v, want not own", name, idn)
		}
	}
	if idn := decideIdentity(own, tenant.ClusterKey("staging"), k, nil); idn.own {
		t.Error("a proof of one tenant verifies in another")
	}
	if idn := decideIdentity(own, prod, proofKeyOf(t, "another-key"), nil); idn.own {
		t.Error("a proof verifies under another API key")
	}
	// status.id, which only the operator writes, vouches for the annotation; a rotated key
	// signs again.
	rotated := objWith("team-a", "alice", id, proofOf(proofKeyOf(t, "old-key"), prod, "team-a", "alice", id), strings.ToLower(id))
	if idn := decideIdentity(rotated, prod, k, nil); !idn.own || !idn.resign {
		t.Errorf("status.id agrees, proof of an old key: %+v, want own and re-signed", idn)
	}
	if idn := decideIdentity(objWith("team-a", "alice", "", "", id), prod, k, nil); !idn.own || !idn.resign {
		t.Errorf("status.id only: %+v, want own, recorded with a proof", idn)
	}
	// Without a key a proof cannot be checked: not own, and said so.
	keyErr := errors.New("no key")
	if idn := decideIdentity(own, prod, nil, keyErr); idn.own || !idn.unchecked || !errors.Is(idn.keyErr, keyErr) {
		t.Errorf("no key: %+v", idn)
	}
	if _, err := tenant.New(nil, tenant.Options{}).ProofKey(); !errors.Is(err, tenant.ErrNoProofKey) {
		t.Errorf("a tenant without a key: %v", err)
	}
}

func TestOwnerOfEmail(t *testing.T) {
	at := func(sec int) metav1.Time { return metav1.NewTime(time.Unix(1_700_000_000+int64(sec), 0)) }
	user := func(ns, uid string, created int, statusID, reason string) iamv1alpha1.CipherscaleUser {
		u := iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "u", UID: types.UID(uid), CreationTimestamp: at(created)}}
		u.Status.ID = statusID
		if reason != "" {
			u.Status.Conditions = []metav1.Condition{{Type: iamv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason}}
		}
		return u
	}
	owner := func(items []iamv1alpha1.CipherscaleUser, self *iamv1alpha1.CipherscaleUser, own bool) string {
		if o := ownerOf(items, self, own); o != nil {
			return string(o.UID)
		}
		return ""
	}
	// The object that recorded the id owns the email, not the one created a second earlier.
	items := []iamv1alpha1.CipherscaleUser{user("a", "older", 0, "", ""), user("b", "recorded", 1, "id-1", iamv1alpha1.ReasonUpToDate)}
	if got := owner(items, nil, false); got != "recorded" {
		t.Errorf("owner %q, want the one that recorded the id", got)
	}
	// Refused objects that manage nobody own nothing, whatever their age.
	for _, reason := range []string{iamv1alpha1.ReasonInvalidTenant, iamv1alpha1.ReasonAdoptionNotAllowed, iamv1alpha1.ReasonNotAllowed, iamv1alpha1.ReasonEmailConflict} {
		items := []iamv1alpha1.CipherscaleUser{user("evil", "squatter", 0, "", reason), user("team-a", "later", 5, "", "")}
		if got := owner(items, nil, false); got != "later" {
			t.Errorf("%s: owner %q, want the later object", reason, got)
		}
		// An object that manages its user keeps it whatever else it is refused.
		items[0].Status.ID = "id-1"
		if got := owner(items, nil, false); got != "squatter" {
			t.Errorf("%s with status.id: owner %q", reason, got)
		}
	}
	// The object asking is judged by this pass, not its last refusal; a verified proof counts
	// as a record.
	items = []iamv1alpha1.CipherscaleUser{user("a", "self", 3, "", iamv1alpha1.ReasonEmailConflict), user("b", "other", 1, "", "")}
	if got := owner(items, &items[0], true); got != "self" {
		t.Errorf("restored object with a verified proof: owner %q", got)
	}
	if got := owner(items, &items[0], false); got != "other" {
		t.Errorf("owner %q, want the older one", got)
	}
}
