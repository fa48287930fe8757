package eventrec

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"
	"k8s.io/client-go/tools/reference"
	"k8s.io/klog/v2"
)

// The timings and limits of client-go's events broadcaster (k8s.io/client-go/tools/events).
const (
	// FinishTime is how long after its last occurrence an event is forgotten (a series gets its
	// final count first).
	FinishTime = 6 * time.Minute
	// RefreshTime is how often every open series is written again, so that it outlives the
	// Events' time to live on the server.
	RefreshTime = 30 * time.Minute
	// maxTries is how many times an Event is sent when the server cannot be reached.
	maxTries = 12
	// retrySleep is the pause between tries (with 25% jitter).
	retrySleep = 10 * time.Second
	// queueLength is how many Events wait for a sender before Eventf hands them to a goroutine.
	queueLength = 1000
	// senders is how many Events are written at the same time: enough that a busy API server
	// (50 ms an Event) keeps up with 10,000 objects reconciled in a few minutes.
	senders = 16
)

// Sink writes Events: the events.k8s.io/v1 API in the manager, a fake in tests.
type Sink interface {
	Create(ctx context.Context, event *eventsv1.Event) (*eventsv1.Event, error)
	// Patch applies a strategic merge patch to the Event namespace/name.
	Patch(ctx context.Context, namespace, name string, data []byte) error
}

// APISink is the Sink of the events.k8s.io/v1 API.
type APISink struct {
	Client eventsv1client.EventsV1Interface
}

// Create creates the Event.
func (s APISink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	return s.Client.Events(e.Namespace).Create(ctx, e, metav1.CreateOptions{})
}

// Patch patches the Event.
func (s APISink) Patch(ctx context.Context, namespace, name string, data []byte) error {
	_, err := s.Client.Events(namespace).Patch(ctx, name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
	return err
}

type key [16]byte

// sent is what the recorder remembers of an Event it sent: enough to turn it into a series.
type sent struct {
	namespace, name string
	at              time.Time // the Event's eventTime
	// series is nil until the event is repeated; then it is the Event as written, series
	// included, so that it can be written again (refresh, finish, or created anew when the
	// server no longer has it).
	series *eventsv1.Event
}

// work is one write: a create, or a series patch (with the Event to create when the server no
// longer has it).
type work struct {
	event *eventsv1.Event
	patch bool
	tries int
}

// Recorder is an events.EventRecorder. It is a manager Runnable: its senders run from Start.
type Recorder struct {
	scheme     *runtime.Scheme
	controller string
	instance   string
	sink       Sink
	log        logr.Logger
	now        func() time.Time

	queue chan work
	done  chan struct{}
	once  sync.Once

	mu    sync.Mutex
	cache map[key]*sent
}

var _ events.EventRecorder = (*Recorder)(nil)

// Options configure a Recorder.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log receives every event at V(1), as the manager's recorder logs them, and the errors.
	Log logr.Logger
}

// New returns a Recorder that reports as controller (its instance is controller-hostname, as
// client-go names it).
func New(scheme *runtime.Scheme, controller, hostname string, sink Sink, o Options) *Recorder {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Recorder{
		scheme: scheme, controller: controller, instance: controller + "-" + hostname, sink: sink,
		log: o.Log, now: o.Now,
		queue: make(chan work, queueLength), done: make(chan struct{}), cache: map[key]*sent{},
	}
}

// Eventf records an event about regarding, as client-go's recorder does.
func (r *Recorder) Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	now := r.now()
	message := fmt.Sprintf(note, args...)
	refRegarding, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		r.log.Error(err, "Could not construct reference, will not report event", "eventType", eventtype, "reason", reason)
		return
	}
	var refRelated *corev1.ObjectReference
	if related != nil {
		if refRelated, err = reference.GetReference(r.scheme, related); err != nil {
			r.log.V(9).Info("Could not construct reference", "err", err)
		}
	}
	if !util.ValidateEventType(eventtype) {
		r.log.Error(nil, "Unsupported event type", "eventType", eventtype)
		return
	}
	namespace := refRegarding.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	e := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      util.GenerateEventName(refRegarding.Name, now.UnixNano()),
			Namespace: namespace,
		},
		EventTime:           metav1.MicroTime{Time: now},
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *refRegarding,
		Related:             refRelated,
		Note:                message,
		Type:                eventtype,
	}
	r.log.V(1).Info("Event occurred", "object", klog.KRef(e.Regarding.Namespace, e.Regarding.Name),
		"kind", e.Regarding.Kind, "apiVersion", e.Regarding.APIVersion, "type", e.Type, "reason", e.Reason,
		"action", e.Action, "note", e.Note)
	if w, ok := r.correlate(e, now); ok {
		r.enqueue(w)
	}
}

// correlate remembers e, or counts it in the series of the isomorphic event sent before, and
// returns the write to make, if any. As in client-go: the first event is created; the second
// turns it into a series of 2 (a patch); later ones only count, and the count is written by
// refresh and finish.
func (r *Recorder) correlate(e *eventsv1.Event, now time.Time) (work, bool) {
	k := keyOf(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.cache[k]
	switch {
	case !ok:
		r.cache[k] = &sent{namespace: e.Namespace, name: e.Name, at: now}
		return work{event: e}, true
	case s.series != nil:
		s.series.Series.Count++
		s.series.Series.LastObservedTime = metav1.MicroTime{Time: now}
		return work{}, false
	default:
		// The Event keeps the first one's name and time; the rest is the same by the key, but
		// for the note, which only a create (when the server lost the first) writes.
		e.Name, e.EventTime = s.name, metav1.MicroTime{Time: s.at}
		e.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.MicroTime{Time: now}}
		s.series = e
		return work{event: e.DeepCopy(), patch: true}, true
	}
}

// keyOf hashes the fields client-go correlates events by (its eventKey).
func keyOf(e *eventsv1.Event) key {
	h := sha256.New()
	var n [8]byte
	add := func(s string) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	ref := func(o corev1.ObjectReference) {
		for _, s := range []string{o.Kind, o.Namespace, o.Name, string(o.UID), o.APIVersion, o.ResourceVersion, o.FieldPath} {
			add(s)
		}
	}
	for _, s := range []string{e.Type, e.Action, e.Reason, e.ReportingController, e.ReportingInstance} {
		add(s)
	}
	ref(e.Regarding)
	if e.Related != nil {
		ref(*e.Related)
	} else {
		ref(corev1.ObjectReference{})
	}
	var k key
	copy(k[:], h.Sum(nil))
	return k
}

// enqueue hands w to the senders without blocking the caller: when the queue is full, a
// goroutine waits for room (client-go's recorder starts one per event).
func (r *Recorder) enqueue(w work) {
	select {
	case r.queue <- w:
	case <-r.done:
	default:
		go func() {
			select {
			case r.queue <- w:
			case <-r.done:
			}
		}()
	}
}

// NeedLeaderElection is false: a manager that is not the leader sends the events it records.
func (r *Recorder) NeedLeaderElection() bool { return false }

// Start runs the senders, and forgets and refreshes series, until ctx ends; then it sends
// what is queued for up to 5 seconds.
func (r *Recorder) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() { r.send(ctx) })
	}
	finish := time.NewTicker(FinishTime)
	refresh := time.NewTicker(RefreshTime)
	defer finish.Stop()
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			r.drain(5 * time.Second)
			r.once.Do(func() { close(r.done) })
			return nil
		case <-finish.C:
			r.Finish(ctx)
		case <-refresh.C:
			r.Refresh(ctx)
		}
	}
}

func (r *Recorder) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-r.queue:
			r.write(ctx, w)
		}
	}
}

// drain writes what is queued, until the queue is empty or d has passed.
func (r *Recorder) drain(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		select {
		case w := <-r.queue:
			w.tries = maxTries // no retry after the end
			r.write(ctx, w)
		default:
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// write sends w once and, when the server could not be reached, again after retrySleep, up to
// maxTries (client-go's attemptRecording).
func (r *Recorder) write(ctx context.Context, w work) {
	if !r.record(ctx, w) {
		return
	}
	w.tries++
	if w.tries >= maxTries {
		r.log.Error(nil, "Unable to write event (retry limit exceeded!)", "reason", w.event.Reason,
			"object", klog.KRef(w.event.Regarding.Namespace, w.event.Regarding.Name))
		return
	}
	sleep := retrySleep + time.Duration(rand.Int64N(int64(retrySleep/4)))
	time.AfterFunc(sleep, func() {
		if ctx.Err() == nil {
			r.enqueue(w)
		}
	})
}

// record writes w and says whether to try again (client-go's recordEvent).
func (r *Recorder) record(ctx context.Context, w work) (retry bool) {
	e := w.event
	var err error
	if w.patch {
		err = r.sink.Patch(ctx, e.Namespace, e.Name, seriesPatch(e.Series))
	}
	if !w.patch || util.IsKeyNotFoundError(err) {
		c := e.DeepCopy()
		c.ResourceVersion = ""
		_, err = r.sink.Create(ctx, c)
	}
	if err == nil {
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	var status *apierrors.StatusError
	switch {
	case errors.As(err, &status):
		if apierrors.IsAlreadyExists(err) {
			if w.patch {
				return true // the series' Event was created meanwhile: patch it
			}
			r.log.V(5).Info("Server rejected event (will not retry!)", "reason", e.Reason, "err", err)
		} else {
			r.log.Error(err, "Server rejected event (will not retry!)", "reason", e.Reason,
				"object", klog.KRef(e.Regarding.Namespace, e.Regarding.Name))
		}
		return false
	default:
		r.log.Error(err, "Unable to write event (may retry after sleeping)")
		return true
	}
}

// seriesPatch is the strategic merge patch that sets an Event's series: what client-go's
// createPatchBytesForSeries computes from the Event without and with its series.
func seriesPatch(s *eventsv1.EventSeries) []byte {
	b, _ := json.Marshal(map[string]any{"series": s}) //nolint:errchkjson // a struct of an int and a time
	return b
}

// Finish forgets the events last seen more than FinishTime ago, writing a series' final count
// first (client-go's finishSeries). Start calls it every FinishTime.
func (r *Recorder) Finish(ctx context.Context) {
	cutoff := r.now().Add(-FinishTime)
	var final []*eventsv1.Event
	r.mu.Lock()
	for k, s := range r.cache {
		switch {
		case s.series == nil:
			if s.at.Before(cutoff) {
				delete(r.cache, k)
			}
		case s.series.Series.LastObservedTime.Time.Before(cutoff):
			final = append(final, s.series.DeepCopy())
			delete(r.cache, k)
		}
	}
	r.mu.Unlock()
	for _, e := range final {
		r.write(ctx, work{event: e, patch: true})
	}
}

// Refresh writes every open series again (client-go's refreshExistingEventSeries). Start calls
// it every RefreshTime.
func (r *Recorder) Refresh(ctx context.Context) {
	var open []*eventsv1.Event
	r.mu.Lock()
	for _, s := range r.cache {
		if s.series != nil {
			open = append(open, s.series.DeepCopy())
		}
	}
	r.mu.Unlock()
	for _, e := range open {
		r.write(ctx, work{event: e, patch: true})
	}
}

// Len returns how many events the recorder remembers.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}
