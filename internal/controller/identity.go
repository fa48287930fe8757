package controller

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// recordedID returns the id of the tenant user a CipherscaleUser manages: the annotation, or,
// for an object an earlier version of the operator reconciled, status.id. "" when the object has
// never created or adopted a user.
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

// recordID records the id of the tenant user in metadata (clearing a pending create) and
// mirrors it in status.id.
func recordID(ctx context.Context, kube client.Client, u *iamv1alpha1.CipherscaleUser, id string) error {
	if err := patchAnnotations(ctx, kube, u, map[string]string{
		iamv1alpha1.AnnotationUserID:        id,
		iamv1alpha1.AnnotationCreatePending: "",
	}); err != nil {
		return fmt.Errorf("recording tenant user %s: %w", id, err)
	}
	u.Status.ID = id
	return nil
}
