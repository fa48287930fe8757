package eventrec

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// fakeSink records the writes, and answers from a server-side map of Events.
type fakeSink struct {
	mu      sync.Mutex
	created []*eventsv1.Event
	patches []string // namespace/name: patch
	stored  map[string]*eventsv1.Event
	fail    error // returned by the next write, once
}

func newSink() *fakeSink { return &fakeSink{stored: map[string]*eventsv1.Event{}} }

func (s *fakeSink) takeFail() error {
	err := s.fail
	s.fail = nil
	return err
}

func (s *fakeSink) Create(_ context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.takeFail(); err != nil {
		return nil, err
	}
	k := e.Namespace + "/" + e.Name
	if _, ok := s.stored[k]; ok {
		return nil, apierrors.NewAlreadyExists(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, e.Name)
	}
	s.created = append(s.created, e.DeepCopy())
	s.stored[k] = e.DeepCopy()
	return e, nil
}

func (s *fakeSink) Patch(_ context.Context, namespace, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.takeFail(); err != nil {
		return err
	}
	k := namespace + "/" + name
	s.patches = append(s.patches, k+": "+string(data))
	e, ok := s.stored[k]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, name)
	}
	var p struct {
		Series *eventsv1.EventSeries `json:"series"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	e.Series = p.Series
	return nil
}

func (s *fakeSink) snapshot() (created []*eventsv1.Event, patches []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*eventsv1.Event(nil), s.created...), append([]string(nil), s.patches...)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func pod(rv string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1", ResourceVersion: rv},
	}
}

// start runs r until the test ends and returns a function that waits for the sink to hold n
// creates and m patches.
func start(t *testing.T, r *Recorder, s *fakeSink) func(n, m int) ([]*eventsv1.Event, []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func(n, m int) ([]*eventsv1.Event, []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, p := s.snapshot()
			if len(c) >= n && len(p) >= m || time.Now().After(deadline) {
				if len(c) != n || len(p) != m {
					t.Fatalf("want %d creates and %d patches, got %d and %d: %v", n, m, len(c), len(p), p)
				}
				return c, p
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func newRecorder(s Sink, c *clock) *Recorder {
	return New(clientgoscheme.Scheme, "ctl", "host", s, Options{Now: c.now, Log: logr.Discard()})
}

func TestEventFields(t *testing.T) {
	s, c := newSink(), &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	r := newRecorder(s, c)
	wait := start(t, r, s)
	related := &corev1.Secret{TypeMeta: metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}}
	r.Eventf(pod("1"), related, corev1.EventTypeWarning, "Reason", "Act", "note %d", 7)
	created, _ := wait(1, 0)
	e := created[0]
	if e.Namespace != "ns" {
		t.Errorf("namespace %q", e.Namespace)
	}
	if e.Name != "p."+hex(c.now().UnixNano()) {
		t.Errorf("name %q, want p.<unix nanoseconds in hex>", e.Name)
	}
	if e.Type != "Warning" || e.Reason != "Reason" || e.Action != "Act" || e.Note != "note 7" ||
		e.ReportingController != "ctl" || e.ReportingInstance != "ctl-host" || e.Series != nil ||
		!e.EventTime.Time.Equal(c.now()) {
		t.Errorf("event %+v", e)
	}
	if e.Regarding.Kind != "Pod" || e.Regarding.Name != "p" || e.Regarding.UID != "uid-1" || e.Regarding.ResourceVersion != "1" {
		t.Errorf("regarding %+v", e.Regarding)
	}
	if e.Related == nil || e.Related.Kind != "Secret" || e.Related.Name != "s" {
		t.Errorf("related %+v", e.Related)
	}
	r.Eventf(pod("1"), nil, "Bogus", "Reason", "Act", "note")
	if r.Len() != 1 {
		t.Errorf("an event of an unknown type was recorded")
	}
}

func hex(n int64) string {
	const digits = "0123456789abcdef"
	var b []byte
	for u := uint64(n); u > 0; u /= 16 {
		b = append([]byte{digits[u%16]}, b...)
	}
	return string(b)
}

// A repeated event becomes a series as in client-go: one create, one patch to count 2, later
// ones counted in memory and written by Refresh and Finish; then forgotten.
func TestSeries(t *testing.T) {
	s, c := newSink(), &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r := newRecorder(s, c)
	wait := start(t, r, s)
	r.Eventf(pod("1"), nil, corev1.EventTypeNormal, "Synced", "Sync", "first")
	created, _ := wait(1, 0)
	c.add(time.Second)
	r.Eventf(pod("1"), nil, corev1.EventTypeNormal, "Synced", "Sync", "second")
	_, patches := wait(1, 1)
	name := "ns/" + created[0].Name
	if want := name + `: {"series":{"count":2,"lastObservedTime":"2026-01-02T03:04:06.000000Z"}}`; patches[0] != want {
		t.Errorf("patch %s, want %s", patches[0], want)
	}
	for range 3 {
		c.add(time.Second)
		r.Eventf(pod("1"), nil, corev1.EventTypeNormal, "Synced", "Sync", "again")
	}
	// Another resourceVersion or reason is another event (an Event's name is its object's and
	// its time: the fake clock moves so that two names differ).
	r.Eventf(pod("2"), nil, corev1.EventTypeNormal, "Synced", "Sync", "new version")
	c.add(time.Millisecond)
	r.Eventf(pod("1"), nil, corev1.EventTypeNormal, "Other", "Sync", "other reason")
	wait(3, 1)
	if r.Len() != 3 {
		t.Fatalf("remembers %d events, want 3", r.Len())
	}
	r.Refresh(context.Background())
	_, patches = wait(3, 2)
	if want := name + `: {"series":{"count":5,"lastObservedTime":"2026-01-02T03:04:09.000000Z"}}`; patches[1] != want {
		t.Errorf("refresh %s, want %s", patches[1], want)
	}
	c.add(FinishTime - time.Second)
	r.Finish(context.Background())
	if r.Len() != 3 {
		t.Fatalf("forgot an event seen less than FinishTime ago: %d left", r.Len())
	}
	c.add(2 * time.Second)
	r.Finish(context.Background())
	wait(3, 3) // the series' final count
	if r.Len() != 0 {
		t.Fatalf("remembers %d events after FinishTime", r.Len())
	}
	// Forgotten: the same event again is a new Event.
	r.Eventf(pod("1"), nil, corev1.EventTypeNormal, "Synced", "Sync", "later")
	wait(4, 3)
}

// A series whose Event the server no longer has is created with its series.
func TestSeriesRecreated(t *testing.T) {
	s, c := newSink(), &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r := newRecorder(s, c)
	wait := start(t, r, s)
	r.Eventf(pod("1"), nil, corev1.EventTypeNormal, "Synced", "Sync", "first")
	created, _ := wait(1, 0)
	s.mu.Lock()
	delete(s.stored, "ns/"+created[0].Name)
	s.mu.Unlock()
	r.Eventf(pod("1"), nil, corev1.EventTypeNormal, "Synced", "Sync", "second")
	created, _ = wait(2, 1)
	e := created[1]
	if e.Name != created[0].Name || e.Series == nil || e.Series.Count != 2 || !e.EventTime.Equal(&created[0].EventTime) {
		t.Errorf("recreated %+v", e)
	}
}

// A write the server could not take is tried again; one it refused is not.
func TestRetry(t *testing.T) {
	s, c := newSink(), &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r := newRecorder(s, c)
	w := work{event: &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e"}}}
	s.fail = errors.New("connection refused")
	if !r.record(context.Background(), w) {
		t.Errorf("a transport error is not retried")
	}
	s.fail = apierrors.NewBadRequest("no")
	if r.record(context.Background(), w) {
		t.Errorf("a refused event is retried")
	}
	if r.record(context.Background(), w) {
		t.Errorf("a create that worked is retried")
	}
	if r.record(context.Background(), w) {
		t.Errorf("an event that already exists is retried")
	}
}

func TestKeyOfSeparatesFields(t *testing.T) {
	base := eventsv1.Event{Type: "Normal", Reason: "ab", Action: "c", Regarding: corev1.ObjectReference{Name: "n"}}
	moved := base
	moved.Reason, moved.Action = "a", "bc"
	if keyOf(&base) == keyOf(&moved) {
		t.Errorf("fields run into each other in the key")
	}
	related := base
	related.Related = &corev1.ObjectReference{}
	if keyOf(&base) != keyOf(&related) {
		t.Errorf("no related and an empty related differ (client-go's key has the zero reference for both)")
	}
}

// seriesPatch is the patch client-go computes (createPatchBytesForSeries).
func TestSeriesPatchIsClientGos(t *testing.T) {
	e := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p.1"}, Reason: "R", Note: "n",
		EventTime: metav1.MicroTime{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Series:    &eventsv1.EventSeries{Count: 7, LastObservedTime: metav1.MicroTime{Time: time.Date(2026, 1, 2, 3, 4, 6, 123456000, time.UTC)}},
	}
	old := e.DeepCopy()
	old.Series = nil
	oldData, _ := json.Marshal(old)
	newData, _ := json.Marshal(e)
	want, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, eventsv1.Event{})
	if err != nil {
		t.Fatal(err)
	}
	if got := seriesPatch(e.Series); string(got) != string(want) {
		t.Errorf("patch %s, client-go's %s", got, want)
	}
}
