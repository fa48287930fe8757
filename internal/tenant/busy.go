package tenant

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// busyAPI counts the tenant's calls in progress other than creates, and remembers when the last
// one ended. While a tenant is busy its rate limit is taken, and a create sent now only takes a
// turn from the other calls, so the batcher lets a partial batch wait for more creates
// (batcher.maybeFlushLocked). When the count falls to zero it tells the batcher.
type busyAPI struct {
	cipherscale.API
	n    atomic.Int64
	last atomic.Int64 // when a call last ended, in Unix nanoseconds
	idle func()
}

func (b *busyAPI) begin() { b.n.Add(1) }

func (b *busyAPI) end() {
	b.last.Store(time.Now().UnixNano())
	if b.n.Add(-1) == 0 && b.idle != nil {
		b.idle()
	}
}

// quietFor returns how long no call has been in progress: 0 while one is.
func (b *busyAPI) quietFor() time.Duration {
	if b.n.Load() > 0 {
		return 0
	}
	return time.Since(time.Unix(0, b.last.Load()))
}

func (b *busyAPI) ListUsersPage(ctx context.Context, limit, offset int, sort ...string) (*cipherscale.Page, error) {
	b.begin()
	defer b.end()
	return b.API.ListUsersPage(ctx, limit, offset, sort...)
}

func (b *busyAPI) ListUsers(ctx context.Context) ([]cipherscale.User, error) {
	b.begin()
	defer b.end()
	return b.API.ListUsers(ctx)
}

func (b *busyAPI) GetUser(ctx context.Context, id string) (*cipherscale.User, error) {
	b.begin()
	defer b.end()
	return b.API.GetUser(ctx, id)
}

func (b *busyAPI) UpdateProfile(ctx context.Context, id string, p cipherscale.ProfileUpdate) (*cipherscale.User, error) {
	b.begin()
	defer b.end()
	return b.API.UpdateProfile(ctx, id, p)
}

func (b *busyAPI) DeleteUser(ctx context.Context, id string) error {
	b.begin()
	defer b.end()
	return b.API.DeleteUser(ctx, id)
}

func (b *busyAPI) DeactivateUser(ctx context.Context, id string) (*cipherscale.User, error) {
	b.begin()
	defer b.end()
	return b.API.DeactivateUser(ctx, id)
}

func (b *busyAPI) ReactivateUser(ctx context.Context, id string) (*cipherscale.User, error) {
	b.begin()
	defer b.end()
	return b.API.ReactivateUser(ctx, id)
}

func (b *busyAPI) ResendInvitation(ctx context.Context, id string) error {
	b.begin()
	defer b.end()
	return b.API.ResendInvitation(ctx, id)
}

func (b *busyAPI) UserRoles(ctx context.Context, id string, filter cipherscale.RoleFilter) ([]cipherscale.Role, error) {
	b.begin()
	defer b.end()
	return b.API.UserRoles(ctx, id, filter)
}

func (b *busyAPI) PatchRoles(ctx context.Context, id string, p cipherscale.RolesPatch) error {
	b.begin()
	defer b.end()
	return b.API.PatchRoles(ctx, id, p)
}

func (b *busyAPI) AddToGroups(ctx context.Context, id string, groupIDs []string) error {
	b.begin()
	defer b.end()
	return b.API.AddToGroups(ctx, id, groupIDs)
}

func (b *busyAPI) RemoveFromGroup(ctx context.Context, id, groupID string) error {
	b.begin()
	defer b.end()
	return b.API.RemoveFromGroup(ctx, id, groupID)
}
