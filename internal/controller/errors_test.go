package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

func TestClassify(t *testing.T) {
	apiErr := func(status int, route string) error {
		method, _, _ := strings.Cut(route, " ")
		return fmt.Errorf("listing tenant users: %w", &cipherscale.APIError{Status: status, Method: method, Route: route, Message: "no"})
	}
	decodeErr := func(route string, err error) error {
		method, _, _ := strings.Cut(route, " ")
		return &cipherscale.DecodeError{Method: method, Route: route, Err: err}
	}
	tests := []struct {
		name    string
		err     error
		reason  string
		stalled bool
		retry   bool
		inMsg   string
	}{
		{"404 of the list: the URL is wrong", apiErr(404, cipherscale.RouteListUsers),
			iamv1alpha1.ReasonAPIUnavailable, false, true, "tenant's URL"},
		{"400 of the list: the URL or the API is wrong", apiErr(400, cipherscale.RouteListUsers),
			iamv1alpha1.ReasonAPIUnavailable, false, true, "tenant's URL"},
		{"404 of a role patch: the spec names an unknown role", apiErr(404, cipherscale.RoutePatchRoles),
			iamv1alpha1.ReasonInvalidReference, true, false, "no role or group"},
		{"400 of a create: the API refused the spec", apiErr(400, cipherscale.RouteCreateUsers),
			iamv1alpha1.ReasonAPIError, true, false, "refused the spec"},
		{"403 of a write", apiErr(403, cipherscale.RoutePatchRoles),
			iamv1alpha1.ReasonForbidden, true, false, "403"},
		{"403 of the list", apiErr(403, cipherscale.RouteListUsers),
			iamv1alpha1.ReasonForbidden, true, false, "permissions"},
		{"401", apiErr(401, cipherscale.RouteListUsers),
			iamv1alpha1.ReasonUnauthorized, true, false, "API key"},
		{"500 of the list", apiErr(500, cipherscale.RouteListUsers),
			iamv1alpha1.ReasonAPIUnavailable, false, true, "unexpected status"},
		{"no answer", &cipherscale.TransportError{Method: "GET", Route: cipherscale.RouteListUsers, Err: errors.New("dial tcp 10.0.0.1:22: connect: connection refused")},
			iamv1alpha1.ReasonAPIUnavailable, false, true, "could not be reached"},
		{"a redirect", apiErr(302, cipherscale.RouteGetUser), iamv1alpha1.ReasonAPIError, false, true, "unexpected status"},
		{"a hostile page", decodeErr(cipherscale.RouteListUsers, errors.New(`user id "../../admin/keys" is not a UUID`)),
			iamv1alpha1.ReasonAPIInvalidResponse, false, true, `"../../admin/keys" is not a UUID`},
		{"an unknown status", decodeErr(cipherscale.RouteGetUser, errors.New(`the status "suspended", which is none of pending, active or inactive`)),
			iamv1alpha1.ReasonAPIInvalidResponse, false, true, "GET /tenants/users/{id}"},
		{"a list past the cap", decodeErr(cipherscale.RouteListUsers, fmt.Errorf("%w: more than 200000 users", cipherscale.ErrListTooLarge)),
			iamv1alpha1.ReasonAPIInvalidResponse, false, true, "--max-tenant-users"},
		{"a list that kept changing", fmt.Errorf("listing tenant users: %w", fmt.Errorf("x: %w", cipherscale.ErrListChanged)),
			iamv1alpha1.ReasonAPIUnavailable, false, true, "kept changing"},
		{"a timeout", context.DeadlineExceeded, iamv1alpha1.ReasonAPIUnavailable, false, true, "in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := classify(tt.err)
			if v.reason != tt.reason || v.stalled != tt.stalled || v.retry != tt.retry || !strings.Contains(v.message, tt.inMsg) {
				t.Errorf("classify = %+v; want reason %s, stalled %v, retry %v, message with %q",
					v, tt.reason, tt.stalled, tt.retry, tt.inMsg)
			}
			// Nothing of what answered (or did not) at the tenant's URL.
			for _, leak := range []string{"connection refused", "dial tcp", "10.0.0.1", ": no"} {
				if strings.Contains(v.message, leak) && (leak != ": no" || v.reason != iamv1alpha1.ReasonForbidden && !v.stalled) {
					t.Errorf("classify's message %q repeats %q", v.message, leak)
				}
			}
		})
	}
	if v := classify(&cipherscale.APIError{Status: 429, Route: cipherscale.RouteListUsers, RetryAfter: 3 * time.Second}); v.requeueAfter != 3*time.Second {
		t.Errorf("429: %+v", v)
	}
}

// TestRateLimitedRequeueGrows: an object refused through a long 429 storm waits longer each
// time, never less than the API asked for, never more than maxThrottledRequeue (plus jitter).
func TestRateLimitedRequeueGrows(t *testing.T) {
	throttled := func(retryAfter, storm time.Duration) error {
		return fmt.Errorf("patching roles: %w", &cipherscale.APIError{Status: 429, Route: cipherscale.RoutePatchRoles,
			RetryAfter: retryAfter, ThrottledFor: storm})
	}
	tests := []struct {
		name          string
		retryAfter    time.Duration
		storm         time.Duration
		atLeast, most time.Duration
	}{
		{"the first 429: the wait asked for", 3 * time.Second, 0, 3 * time.Second, 3 * time.Second},
		{"a pause nearly over: at least a second", 50 * time.Millisecond, 0, time.Second, time.Second},
		{"20 s into a storm: about 5 s", time.Second, 20 * time.Second, 4500 * time.Millisecond, 5500 * time.Millisecond},
		{"a long Retry-After wins", 30 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second},
		{"an hour into a storm: the cap", time.Second, time.Hour, maxThrottledRequeue * 9 / 10, maxThrottledRequeue * 11 / 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				v := classify(throttled(tt.retryAfter, tt.storm))
				if v.reason != iamv1alpha1.ReasonAPIUnavailable || v.requeueAfter < tt.atLeast || v.requeueAfter > tt.most {
					t.Fatalf("classify = %+v; want APIUnavailable and a requeue in [%v, %v]", v, tt.atLeast, tt.most)
				}
			}
		})
	}
}
