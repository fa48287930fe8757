package controller

import (
	"context"
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// A create does not hold a worker. The pass that decides to create a user marks the create as
// pending in the object's metadata (as before any create), hands the new user to its tenant's
// batcher and returns, the object Reconciling (Creating). The workers go on with other objects,
// and the creates that arrive meanwhile gather in the batcher's next request. When the answer
// arrives it is kept here, the user is already in the snapshot, and the object is woken: its
// next pass takes the answer as a synchronous create would have (records the id, or reports the
// refusal). While the create is queued or in flight, a pass of the object (or of another object
// with the email) waits for it: it neither creates again nor concludes there is no user.

// pendingCreate is one create this process queued for an object, from the pass that queued it
// to the pass that takes its answer.
type pendingCreate struct {
	tenant tenant.Key
	// attempt is when the pass that queued it started the create: a 409 is resolved by a read of
	// the tenant that started after it.
	attempt time.Time
	// markedBefore: the object carried a pending mark before this create (an earlier attempt).
	markedBefore bool
	done         bool
	user         *cipherscale.User
	err          error
}

// createLog holds the pending creates of this process by object UID. An entry leaves when a pass
// takes its answer (or the object is deleted); it is never evidence of a tenant user by itself:
// its answer is the API's.
type createLog struct {
	mu sync.Mutex
	m  map[types.UID]*pendingCreate
}

// start records a create about to be queued; false when the object already has one (a create
// is never queued twice for one object).
func (l *createLog) start(uid types.UID, pc *pendingCreate) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[types.UID]*pendingCreate{}
	}
	if _, ok := l.m[uid]; ok {
		return false
	}
	l.m[uid] = pc
	return true
}

// finish records the answer of the object's create.
func (l *createLog) finish(uid types.UID, u *cipherscale.User, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pc := l.m[uid]; pc != nil {
		pc.done, pc.user, pc.err = true, u, err
	}
}

// get returns a copy of the object's pending create.
func (l *createLog) get(uid types.UID) (pendingCreate, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pc := l.m[uid]
	if pc == nil {
		return pendingCreate{}, false
	}
	return *pc, true
}

// forget drops the object's create once a pass has taken its answer.
func (l *createLog) forget(uid types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, uid)
}

// waker enqueues CipherscaleUsers from outside a watch: the controller's queue, set when the
// controller starts.
type waker struct {
	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func (w *waker) set(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.q = q
}

func (w *waker) add(keys ...types.NamespacedName) {
	if w == nil {
		return
	}
	w.mu.Lock()
	q := w.q
	w.mu.Unlock()
	if q == nil {
		return
	}
	for _, k := range keys {
		q.Add(reconcile.Request{NamespacedName: k})
	}
}

// wakeFor returns a function that enqueues key: a waiter (tenant.Enter) that holds only its key,
// not the pass that made it (whose object, status copy and logger would otherwise stay in
// memory for as long as it waits: thousands of objects at once when a sync outruns the tenant).
func (w *waker) wakeFor(key types.NamespacedName) func() {
	return func() { w.add(key) }
}

// wakeEmail enqueues the object key and the other CipherscaleUsers of tenant t with the email:
// one of them may be waiting for the create that just answered.
func (r *UserReconciler) wakeEmail(t tenant.Key, key types.NamespacedName, uid types.UID, email string) {
	keys := []types.NamespacedName{key}
	var list iamv1alpha1.CipherscaleUserList
	if err := r.Kube.List(context.Background(), &list, client.MatchingFields{indexUserEmail: scoped(t, cipherscale.NormalizeEmail(email))}, client.UnsafeDisableDeepCopy); err == nil {
		for i := range list.Items {
			if list.Items[i].UID != uid {
				keys = append(keys, client.ObjectKeyFromObject(&list.Items[i]))
			}
		}
	}
	r.wake.add(keys...)
}

// ownMark puts the pending mark the object's create wrote back on the in-memory object when the
// cache that served this pass has not seen it yet, so that recording the id (or a refusal)
// clears it rather than leaving it beside the id.
func ownMark(obj *iamv1alpha1.CipherscaleUser, pc pendingCreate) {
	if createPending(obj) {
		return
	}
	a := maps.Clone(obj.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	a[iamv1alpha1.AnnotationCreatePending] = pc.attempt.UTC().Format(time.RFC3339)
	obj.Annotations = a
}
