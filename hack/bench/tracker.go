package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// tracker watches CipherscaleUsers and CipherscaleGroupMemberships and notes when each is Ready
// (condition Ready True for the object's current generation), so that times are taken when the
// API server tells of the change rather than at a polling tick.
type tracker struct {
	mu      sync.Mutex
	ready   map[string]bool
	firstAt map[string]time.Time // when the object was first seen Ready
	count   int
	changed chan struct{} // closed and replaced on every change
}

func startTracker(ctx context.Context, cfg *rest.Config) (*tracker, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: devenv.Scheme(), DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, err
	}
	t := &tracker{ready: map[string]bool{}, firstAt: map[string]time.Time{}, changed: make(chan struct{})}
	for _, obj := range []client.Object{&iamv1alpha1.CipherscaleUser{}, &iamv1alpha1.CipherscaleGroupMembership{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { t.observe(o, false) },
			UpdateFunc: func(_, o any) { t.observe(o, false) },
			DeleteFunc: func(o any) { t.observe(o, true) },
		}); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, ctx.Err()
	}
	return t, nil
}

func key(o client.Object) string {
	kind := "user"
	if _, ok := o.(*iamv1alpha1.CipherscaleGroupMembership); ok {
		kind = "membership"
	}
	return kind + "/" + o.GetNamespace() + "/" + o.GetName()
}

func (t *tracker) observe(o any, deleted bool) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o, deleted = d.Obj, true
	}
	obj, ok := o.(client.Object)
	if !ok {
		return
	}
	var conds []metav1.Condition
	switch x := obj.(type) {
	case *iamv1alpha1.CipherscaleUser:
		conds = x.Status.Conditions
	case *iamv1alpha1.CipherscaleGroupMembership:
		conds = x.Status.Conditions
	}
	c := meta.FindStatusCondition(conds, iamv1alpha1.ConditionReady)
	ready := !deleted && c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == obj.GetGeneration()
	now := time.Now()
	k := key(obj)
	t.mu.Lock()
	defer t.mu.Unlock()
	if ready == t.ready[k] {
		return
	}
	if ready {
		t.ready[k] = true
		t.count++
		if _, seen := t.firstAt[k]; !seen {
			t.firstAt[k] = now
		}
	} else {
		delete(t.ready, k)
		t.count--
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// state returns how many objects are Ready and a channel closed at the next change.
func (t *tracker) state() (int, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count, t.changed
}

// readyAt returns when the object was first seen Ready.
func (t *tracker) readyAt(o client.Object) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.firstAt[key(o)]
	return at, ok
}

// waitCount waits until at least n objects are Ready at once and returns when that was seen.
func (t *tracker) waitCount(ctx context.Context, n int, progress func(int)) (time.Time, error) {
	for {
		c, ch := t.state()
		if c >= n {
			return time.Now(), nil
		}
		if progress != nil {
			progress(c)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// waitFor waits until the object has been seen Ready and returns when that was.
func (t *tracker) waitFor(ctx context.Context, o client.Object) (time.Time, error) {
	for {
		_, ch := t.state()
		if at, ok := t.readyAt(o); ok {
			return at, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// countNamespace returns how many users and memberships of namespace ns are Ready.
func (t *tracker) countNamespace(ns string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k := range t.ready {
		if strings.HasPrefix(k, "user/"+ns+"/") || strings.HasPrefix(k, "membership/"+ns+"/") {
			n++
		}
	}
	return n
}
