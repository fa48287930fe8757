package tenant

import (
	"context"

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
