package tenant

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// RoleTypes returns the type of every role some user of the snapshot holds directly, by
// normalized role id. The API has no list of roles: a role nobody holds has no known type. The
// snapshot is read again when it is older than the resync interval, so the types follow it.
func (t *Tenant) RoleTypes(ctx context.Context) (map[string]cipherscale.RoleType, error) {
	if err := t.ensureFresh(ctx); err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := map[string]cipherscale.RoleType{}
	for _, u := range t.byID {
		for _, r := range u.Roles {
			if r.Type != "" {
				out[cipherscale.NormalizeID(r.ID)] = r.Type
			}
		}
	}
	return out, nil
}

// groupRoles keeps, per normalized group id, what members of the group showed of the roles they
// inherit through groups, for MaxAge.
type groupRoles struct {
	mu   sync.Mutex
	byID map[string]groupReading
}

type groupReading struct {
	inherited [][]cipherscale.Role
	at        time.Time
}

// maxGroupReads bounds the members read for one group when some of them are gone.
const maxGroupReads = 3

// GroupInheritedRoles returns what the API tells of the roles a group carries. The API has no
// list of a group's roles; it answers, for one user, the roles inherited through all of their
// groups (GET /tenants/users/{id}/roles?groupsOnly=true). The member read is the one in the
// fewest groups in the snapshot (ties by id): a member of this group alone shows exactly its
// roles, a member of several their union. Each answer is one element of the result; none when
// the snapshot has no member of the group (the group's roles cannot be told:
// plan.TrustPolicy.PrivilegedGroup counts it privileged). Answers are kept for MaxAge (an
// empty one is not: it cost no call), and concurrent callers for one group share one read.
func (t *Tenant) GroupInheritedRoles(ctx context.Context, groupID string) ([][]cipherscale.Role, error) {
	gid := normalizeID(groupID)
	if r, ok := t.groupReadingOf(gid); ok {
		return r, nil
	}
	ch := t.refresh.DoChan("group-roles:"+gid, func() (any, error) {
		if r, ok := t.groupReadingOf(gid); ok {
			return r, nil
		}
		members, err := t.UsersInGroup(ctx, gid)
		if err != nil {
			return nil, err
		}
		sort.Slice(members, func(i, j int) bool {
			if len(members[i].Groups) != len(members[j].Groups) {
				return len(members[i].Groups) < len(members[j].Groups)
			}
			return members[i].ID < members[j].ID
		})
		at := t.opts.Now()
		var inherited [][]cipherscale.Role
		for _, m := range members[:min(len(members), maxGroupReads)] {
			roles, err := t.api.UserRoles(context.WithoutCancel(ctx), m.ID, cipherscale.GroupRolesOnly)
			if cipherscale.IsNotFound(err) {
				continue // gone since the snapshot: it tells nothing of the group
			}
			if err != nil {
				return nil, fmt.Errorf("reading the roles user %s inherits through groups: %w", m.ID, err)
			}
			inherited = append(inherited, roles)
			break
		}
		if len(inherited) == 0 {
			// Nothing learned (no member in the snapshot yet): not kept, so that the next
			// snapshot's members are read at once.
			return inherited, nil
		}
		t.groups.mu.Lock()
		if t.groups.byID == nil {
			t.groups.byID = map[string]groupReading{}
		}
		t.groups.byID[gid] = groupReading{inherited: inherited, at: at}
		t.groups.mu.Unlock()
		return inherited, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		r, _ := res.Val.([][]cipherscale.Role)
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// groupReadingOf returns the kept reading of a group younger than MaxAge.
func (t *Tenant) groupReadingOf(gid string) ([][]cipherscale.Role, bool) {
	t.groups.mu.Lock()
	defer t.groups.mu.Unlock()
	r, ok := t.groups.byID[gid]
	if !ok || t.opts.Now().Sub(r.at) >= t.maxAge() {
		return nil, false
	}
	return r.inherited, true
}
