package controller

import (
	"context"
	"errors"
	"time"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// verdict is how one error is handled: which condition it sets and how the object is retried.
type verdict struct {
	// stalled: a person must act. The object is checked again at the resync interval, since the
	// cause can be fixed outside Kubernetes (a role created, a key rotated).
	stalled bool
	reason  string
	message string
	// requeueAfter is set for a rate limit: retry after the wait the API asked for.
	requeueAfter time.Duration
	// retry: return the error so that controller-runtime backs off.
	retry bool
}

// classify maps an error to its verdict: the one place where errors are sorted.
func classify(err error) verdict {
	var ae *cipherscale.APIError
	var de *cipherscale.DecodeError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, message: "The Cipherscale API did not answer in time", retry: true}
	case cipherscale.IsUnauthorized(err):
		return verdict{stalled: true, reason: iamv1alpha1.ReasonUnauthorized,
			message: "The Cipherscale API refused the API key: check the Secret the operator reads it from"}
	case cipherscale.IsRateLimited(err):
		// At least a second: a call refused during a pause gets what is left of it, and objects
		// coming back at its very end would all ask at once.
		wait := max(cipherscale.RetryAfterOf(err), time.Second)
		// The message does not carry the wait: an object requeued through a long 429 storm
		// would otherwise write its status at every pass.
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, requeueAfter: wait,
			message: "The Cipherscale API is rate limiting the operator; retrying after the pause it asked for"}
	case cipherscale.IsRetryable(err):
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, retry: true, message: "The Cipherscale API is unavailable: " + err.Error()}
	case errors.As(err, &de):
		return verdict{reason: iamv1alpha1.ReasonAPIError, retry: true, message: err.Error()}
	case cipherscale.IsNotFound(err):
		return verdict{stalled: true, reason: iamv1alpha1.ReasonInvalidReference,
			message: "The tenant has no role or group with an id the spec names: " + err.Error()}
	case cipherscale.IsForbidden(err):
		return verdict{stalled: true, reason: iamv1alpha1.ReasonOwnerProtected, message: "The Cipherscale API refused the change: " + err.Error()}
	case errors.As(err, &ae) && ae.Status == 400:
		return verdict{stalled: true, reason: iamv1alpha1.ReasonAPIError, message: "The Cipherscale API refused the spec: " + err.Error()}
	default:
		return verdict{reason: iamv1alpha1.ReasonAPIError, retry: true, message: err.Error()}
	}
}
