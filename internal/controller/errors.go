package controller

import (
	"context"
	"errors"
	"time"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
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

// maxThrottledRequeue bounds the wait of an object whose tenant has been rate limiting the
// operator for a long time.
const maxThrottledRequeue = time.Minute

// classify maps an error to its verdict: the one place where errors are sorted.
func classify(err error) verdict {
	var ae *cipherscale.APIError
	var de *cipherscale.DecodeError
	var rb *removalWaitError
	switch {
	case errors.As(err, &rb):
		return verdict{reason: iamv1alpha1.ReasonRemovalBudgetExceeded, requeueAfter: rb.retryAfter, message: rb.Error()}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, message: "The Cipherscale API did not answer in time", retry: true}
	case errors.Is(err, tenant.ErrInvalidSecret):
		// The tenant's Secret is gone, or no longer consents: the tenant object says which; its
		// users may not see that Secret's namespace.
		return verdict{stalled: true, reason: iamv1alpha1.ReasonInvalidTenant,
			message: "The tenant's API key Secret cannot be used: see the tenant object's status"}
	case cipherscale.IsUnauthorized(err):
		return verdict{stalled: true, reason: iamv1alpha1.ReasonUnauthorized,
			message: "The Cipherscale API refused the API key: check the Secret the operator reads it from"}
	case cipherscale.IsRateLimited(err):
		// At least a second: a call refused during a pause gets what is left of it, and objects
		// coming back at its very end would all ask at once. Through a long storm the wait grows
		// with it, to a quarter of its length so far (jittered, at most maxThrottledRequeue): a
		// tenant that answers nothing but 429 costs fewer passes the longer it lasts, and its
		// objects still come back within a quarter of the storm's length after it ends.
		grown := jitter(min(cipherscale.ThrottledForOf(err)/4, maxThrottledRequeue))
		wait := max(cipherscale.RetryAfterOf(err), time.Second, grown)
		// The message does not carry the wait: an object requeued through a long 429 storm
		// would otherwise write its status at every pass.
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, requeueAfter: wait,
			message: "The Cipherscale API is rate limiting the operator; retrying after the pause it asked for"}
	case cipherscale.IsTransport(err):
		// No detail (a refused connection, a TLS error) in the status: it would tell whoever
		// chose spec.url what is at that address. The error itself is logged.
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, retry: true, message: msgUnreachable}
	case cipherscale.IsRetryable(err):
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, retry: true, message: msgUnavailable}
	case errors.Is(err, cipherscale.ErrListChanged):
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, retry: true,
			message: "The tenant's user list kept changing while it was read; retrying: " + err.Error()}
	case errors.Is(err, cipherscale.ErrListTooLarge):
		return verdict{reason: iamv1alpha1.ReasonAPIInvalidResponse, retry: true,
			message: "The Cipherscale API sent a user list larger than the operator reads (raise --max-tenant-users " +
				"or --max-tenant-list-mib if the tenant is really that large): " + err.Error()}
	case errors.As(err, &de):
		return verdict{reason: iamv1alpha1.ReasonAPIInvalidResponse, retry: true,
			message: "The Cipherscale API sent a response the operator refuses: " + err.Error()}
	case cipherscale.RouteOf(err) == cipherscale.RouteListUsers && (cipherscale.IsNotFound(err) || cipherscale.IsBadRequest(err)):
		// The list takes no input from the spec: the URL does not point at the API, or the API is broken.
		return verdict{reason: iamv1alpha1.ReasonAPIUnavailable, retry: true,
			message: "The Cipherscale API answered the list of the tenant's users with an unexpected status: check that the tenant's URL points at the Cipherscale API"}
	case cipherscale.IsNotFound(err):
		return verdict{stalled: true, reason: iamv1alpha1.ReasonInvalidReference,
			message: "The tenant has no role or group with an id the spec names: " + err.Error()}
	case cipherscale.IsForbidden(err):
		return verdict{stalled: true, reason: iamv1alpha1.ReasonForbidden,
			message: "The Cipherscale API refused the call (403): check the permissions of the API key: " + err.Error()}
	case errors.As(err, &ae) && ae.Status == 400:
		return verdict{stalled: true, reason: iamv1alpha1.ReasonAPIError, message: "The Cipherscale API refused the spec: " + err.Error()}
	case errors.As(err, &ae):
		// A status the API does not document for the call (a redirect, a 418): its body is not
		// repeated, as it may come from something that is not the API.
		return verdict{reason: iamv1alpha1.ReasonAPIError, retry: true, message: msgUnexpectedStatus}
	default:
		return verdict{reason: iamv1alpha1.ReasonAPIError, retry: true, message: err.Error()}
	}
}

// Messages of failed calls that say nothing of what answered (D3: spec.url is chosen by whoever
// writes a tenant object, so a status must not describe what is at an address).
const (
	msgUnreachable      = "The Cipherscale API could not be reached; retrying"
	msgUnavailable      = "The Cipherscale API answered with an unexpected status (it may be unavailable); retrying"
	msgUnexpectedStatus = "The Cipherscale API answered with an unexpected status"
)

// removalNotSent reports whether the error of a delete or deactivate call says that nobody was
// removed: the API answered with a refusal (a 4xx other than 404, which means the user is
// gone). Anything else (no answer, a timeout, a 5xx) may have removed the user.
func removalNotSent(err error) bool {
	st := cipherscale.StatusOf(err)
	return st >= 400 && st < 500 && st != 404
}
