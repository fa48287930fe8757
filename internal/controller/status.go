package controller

import (
	"context"
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// patchStatus writes the change from before to after to obj's status subresource as one merge
// patch, and nothing when they are equal. An object that is gone needs no status.
func patchStatus(ctx context.Context, kube client.Client, obj client.Object, before, after any) error {
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	oldJSON, err := json.Marshal(map[string]any{"status": before})
	if err != nil {
		return err
	}
	newJSON, err := json.Marshal(map[string]any{"status": after})
	if err != nil {
		return err
	}
	patch, err := jsonpatch.CreateMergePatch(oldJSON, newJSON)
	if err != nil {
		return err
	}
	if err := kube.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

// ensureFinalizer adds the finalizer when missing, with an optimistic lock so that no other
// writer's finalizers are lost.
func ensureFinalizer(ctx context.Context, kube client.Client, obj client.Object, finalizer string) error {
	orig := obj.DeepCopyObject().(client.Object)
	if !controllerutil.AddFinalizer(obj, finalizer) {
		return nil
	}
	if err := kube.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// releaseFinalizer removes the finalizer. An object already gone is fine.
func releaseFinalizer(ctx context.Context, kube client.Client, obj client.Object, finalizer string) error {
	orig := obj.DeepCopyObject().(client.Object)
	if !controllerutil.RemoveFinalizer(obj, finalizer) {
		return nil
	}
	if err := kube.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	return nil
}
