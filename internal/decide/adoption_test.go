package decide

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// TestUserFound: trust comes first (a user the object may not manage is neither shown while
// paused nor adopted through a hand-written create mark), then the pause, the object's own
// create mark, the adoption policy.
func TestUserFound(t *testing.T) {
	created := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	adopting, closed := plan.AllowAll(), plan.TrustPolicy{}
	older := &cipherscale.User{ID: "u", Status: cipherscale.StatusActive, CreatedAt: created.Add(-time.Hour)}
	// A pending user created after the object: the answer of the object's own create, lost.
	ownPending := &cipherscale.User{ID: "u", Status: cipherscale.StatusPending, CreatedAt: created.Add(time.Minute)}
	cases := []struct {
		name            string
		trust           plan.TrustPolicy
		live            *cipherscale.User
		paused, pending bool
		never           bool
		want            Found
	}{
		{"adopts where it may", adopting, older, false, false, false, FoundAdopt},
		{"adoptionPolicy Never", adopting, older, false, false, true, FoundNeverAdopt},
		{"may not adopt", closed, older, false, false, false, FoundRefused},
		{"may not adopt, Never: refused first", closed, older, false, false, true, FoundRefused},
		{"own create, answer lost", closed, ownPending, false, true, false, FoundOwnCreate},
		{"own create, whatever the adoptionPolicy", adopting, older, false, true, true, FoundOwnCreate},
		{"hand-written mark on someone else", closed, older, false, true, false, FoundRefused},
		{"paused, may adopt", adopting, older, true, false, false, FoundPaused},
		{"paused, own create", closed, ownPending, true, true, false, FoundPaused},
		{"paused, may not adopt: not shown", closed, older, true, false, false, FoundPausedUnseen},
		{"paused, hand-written mark: not shown", closed, older, true, true, false, FoundPausedUnseen},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "jane", CreationTimestamp: metav1.NewTime(created)}}
			if c.never {
				u.Spec.AdoptionPolicy = iamv1alpha1.AdoptionPolicyNever
			}
			if got := UserFound(c.trust, u, c.live, c.paused, c.pending); got != c.want {
				t.Fatalf("UserFound = %d, want %d", got, c.want)
			}
		})
	}
}
