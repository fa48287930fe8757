package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// DefaultFullResyncInterval is how often a tenant is read whole when its spec sets no
// fullResyncInterval: between two full reads the snapshot is kept by incremental reads.
const DefaultFullResyncInterval = time.Hour

// byUpdatedDesc is the order of an incremental read: most recently changed first.
const byUpdatedDesc = "-updatedAt"

// errNeedFull says that an incremental read cannot bring the snapshot up to date: the tenant
// is read whole instead.
var errNeedFull = errors.New("the tenant must be read whole")

// watermark is what an incremental read starts from: the most recent updatedAt the API
// reported when the last read began. Users changed at or after it are read again.
type watermark struct {
	at time.Time
	ok bool
}

// incremental reports whether the next read may be incremental: the snapshot is valid, its
// last full read is younger than FullResyncInterval, and the API reports updatedAt; mu is held.
func (t *Tenant) incrementalLocked(now time.Time) (watermark, bool) {
	if !t.valid || t.fullResyncInterval() <= 0 || !t.mark.ok {
		return watermark{}, false
	}
	return t.mark, now.Sub(t.fullAt) < t.fullResyncInterval()
}

// topUpdated reads the first page of the users sorted by updatedAt, most recent first, and
// returns the most recent updatedAt: a full read that follows it sees every change made before,
// and the next incremental read re-reads every change made at or after it. A tenant whose users
// carry no updatedAt gives no watermark (every read is then whole).
func (t *Tenant) topUpdated(ctx context.Context) (watermark, error) {
	p, err := t.api.ListUsersPage(ctx, 1, 0, byUpdatedDesc)
	if err != nil {
		return watermark{}, fmt.Errorf("reading the most recent change of the tenant: %w", err)
	}
	if len(p.Data) == 0 {
		return watermark{ok: true}, nil // an empty tenant: every user of the next read is new
	}
	at := p.Data[0].UpdatedAt
	return watermark{at: at, ok: !at.IsZero()}, nil
}

// readChanged reads the users changed at or after mark.at, most recent first, page by page,
// until a page reaches users changed before it. It returns them, the total the API reports, and
// the watermark of the next read (the most recent updatedAt of the first page). A read that
// would cost more than half a full read, a user without updatedAt, or a page out of the order
// asked for, is errNeedFull. Users are
// read again after a change that moved them during the read (the offsets shift towards the end:
// nothing is skipped); a user deleted meanwhile shifts them the other way, and the total then
// tells (the caller reads whole).
func (t *Tenant) readChanged(ctx context.Context, mark watermark, known int) ([]cipherscale.User, int, watermark, error) {
	maxPages := known/cipherscale.MaxPageSize/2 + 1
	var (
		out    []cipherscale.User
		seen   = map[string]struct{}{}
		next   = mark
		offset int
	)
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, 0, watermark{}, errNeedFull
		}
		p, err := t.api.ListUsersPage(ctx, cipherscale.MaxPageSize, offset, byUpdatedDesc)
		if err != nil {
			return nil, 0, watermark{}, fmt.Errorf("listing the users changed since %s at offset %d: %w", mark.at.Format(time.RFC3339Nano), offset, err)
		}
		// An API that does not keep the order asked for cannot say where the changes end.
		for i := 1; i < len(p.Data); i++ {
			if p.Data[i].UpdatedAt.After(p.Data[i-1].UpdatedAt) {
				return nil, 0, watermark{}, errNeedFull
			}
		}
		older := false
		for i := range p.Data {
			u := p.Data[i]
			if u.UpdatedAt.IsZero() || u.ID == "" {
				return nil, 0, watermark{}, errNeedFull
			}
			if page == 0 && u.UpdatedAt.After(next.at) {
				next.at = u.UpdatedAt
			}
			if u.UpdatedAt.Before(mark.at) {
				older = true
				break
			}
			if _, dup := seen[u.ID]; dup {
				continue
			}
			seen[u.ID] = struct{}{}
			out = append(out, u)
		}
		if older || !p.HasNext || len(p.Data) == 0 {
			return out, p.Total, next, nil
		}
		offset += len(p.Data)
	}
}

// applyChanged puts the users of an incremental read into the snapshot (a user written locally
// since the read began keeps its local copy, and is read again by the next read) and reports whether the snapshot now holds as many
// users as the API says it has. When it does not, users were deleted (or created and missed)
// since the last read, and the caller reads the tenant whole.
func (t *Tenant) applyChanged(users []cipherscale.User, total int, next watermark, started time.Time, startSeq uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range users {
		u := &users[i]
		if seq, ok := t.touched[u.ID]; ok && seq > startSeq {
			// Written since the read began: the local copy is newer than what was read, but
			// only the API's copy carries everything (the names of roles added by a patch).
			// The next read starts no later than this user's change, and reads it again.
			if u.UpdatedAt.Before(next.at) {
				next.at = u.UpdatedAt
			}
			continue
		}
		if old, ok := t.byID[u.ID]; ok {
			t.unindexLocked(old)
		}
		u = t.compactLocked(u)
		t.byID[u.ID] = u
		t.learnNamesLocked(u)
		t.indexLocked(u)
	}
	if len(t.byID) != total {
		return false
	}
	t.fetchedAt, t.mark = started, next
	t.failure = nil
	return true
}
