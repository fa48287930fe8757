package controller

import (
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cipherscale/cipherscale-operator/internal/plan"
)

// sendLog remembers the invitations this process sent, by tenant user id. status.invitation.sentTimes
// carries them across restarts, but a pass may read an object from the cache before the status
// written by the previous pass arrives: the log keeps the cap exact meanwhile.
type sendLog struct {
	mu     sync.Mutex
	byUser map[string][]time.Time
}

// times returns the sends to count for a user: those of the log, seeded from the status the first
// time the user is seen.
func (l *sendLog) times(id string, status []metav1.Time) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.byUser[id]; ok {
		return append([]time.Time(nil), t...)
	}
	out := make([]time.Time, 0, len(status))
	for _, t := range status {
		out = append(out, t.Time)
	}
	return out
}

// record adds a send, keeps the newest keep sends of the last day, forgets users with none, and
// returns the user's sends for the status.
func (l *sendLog) record(id string, sent []time.Time, now time.Time, keep int) []metav1.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser == nil {
		l.byUser = map[string][]time.Time{}
	}
	for u, ts := range l.byUser {
		if len(plan.RecentSends(ts, 0, now)) == 0 {
			delete(l.byUser, u)
		}
	}
	recent := plan.RecentSends(append(append([]time.Time(nil), sent...), now), keep, now)
	l.byUser[id] = recent
	out := make([]metav1.Time, 0, len(recent))
	for _, t := range recent {
		out = append(out, metav1.NewTime(t))
	}
	return out
}
