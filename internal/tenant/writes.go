package tenant

// The tenant's writes: each call is made, and its answer kept in the snapshot, so that the
// snapshot stays current between reads.

import (
	"context"
	"errors"
	"fmt"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// mutate applies fn to the snapshot's copy of a user after a write whose response has no body.
func (t *Tenant) mutate(id string, fn func(u *cipherscale.User)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.byID[id]
	if !ok {
		return
	}
	c := copyUser(u)
	fn(c)
	c.UpdatedAt = t.opts.Now()
	t.storeLocked(c)
}

func (t *Tenant) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u, ok := t.byID[id]; ok {
		t.unindexLocked(u)
		delete(t.byID, id)
	}
	t.writeSeq++
	t.touched[id] = t.writeSeq
}

// afterWrite interprets a write's error. A 404 from a write to a user may mean the user is gone
// or that a role or group it named is unknown: one read of the user tells which. A user that is
// gone is dropped from the snapshot and reported as ErrUserGone; any other error is returned.
func (t *Tenant) afterWrite(ctx context.Context, id string, err error) error {
	if err == nil || !cipherscale.IsNotFound(err) {
		return err
	}
	if _, gerr := t.api.GetUser(ctx, id); cipherscale.IsNotFound(gerr) {
		t.forget(id)
		return fmt.Errorf("%w: %w", ErrUserGone, err)
	} else if gerr != nil {
		return gerr
	}
	return err
}

// UpdateProfile writes the profile and records the response.
func (t *Tenant) UpdateProfile(ctx context.Context, id string, p cipherscale.ProfileUpdate) error {
	u, err := t.api.UpdateProfile(ctx, id, p)
	if err = t.afterWrite(ctx, id, err); err != nil {
		return err
	}
	if u != nil && u.ID != "" {
		t.store(u)
		return nil
	}
	t.mutate(id, func(u *cipherscale.User) {
		if p.FirstName != nil {
			u.FirstName = *p.FirstName
		}
		if p.LastName != nil {
			u.LastName = *p.LastName
		}
		if p.Image != nil {
			u.Image = *p.Image
		}
	})
	return nil
}

// PatchRoles adds and removes direct roles and records the result.
func (t *Tenant) PatchRoles(ctx context.Context, id string, p cipherscale.RolesPatch) error {
	err := t.afterWrite(ctx, id, t.api.PatchRoles(ctx, id, p))
	if err != nil {
		return err
	}
	t.mutate(id, func(u *cipherscale.User) {
		removed := idSet(p.RemovedRoles)
		roles := u.Roles[:0:0]
		have := map[string]struct{}{}
		for _, r := range u.Roles {
			n := normalizeID(r.ID)
			if _, gone := removed[n]; gone {
				continue
			}
			have[n] = struct{}{}
			roles = append(roles, r)
		}
		for _, a := range p.AddedRoles {
			if _, ok := have[normalizeID(a)]; !ok {
				roles = append(roles, cipherscale.Role{ID: a, Name: t.roleNames[normalizeID(a)]})
				have[normalizeID(a)] = struct{}{}
			}
		}
		u.Roles = roles
	})
	return nil
}

// GroupRefused reports whether an add of a user to this group alone was refused with a 404,
// while the user exists, less than MaxAge ago: the tenant has no such group. It lets a
// membership whose pairs another reconciler writes report the unknown group, and spares that
// reconciler a refused call on every pass; a successful add clears it.
func (t *Tenant) GroupRefused(groupID string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	at, ok := t.refusedGroups[normalizeID(groupID)]
	return ok && t.opts.Now().Sub(at) < t.maxAge()
}

// GroupSeen reports whether the API has reported the group on a user or accepted an add to it
// (so it existed then) and no add to it was refused since. A hint only: the group may have been
// deleted since.
func (t *Tenant) GroupSeen(groupID string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, seen := t.seenGroups[normalizeID(groupID)]
	_, refused := t.refusedGroups[normalizeID(groupID)]
	return seen && !refused
}

func (t *Tenant) setGroupRefused(groupID string, refused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if refused {
		t.refusedGroups[normalizeID(groupID)] = t.opts.Now()
	} else {
		delete(t.refusedGroups, normalizeID(groupID))
	}
}

// AddToGroups adds the user to groups and records the result.
func (t *Tenant) AddToGroups(ctx context.Context, id string, groupIDs []string) error {
	if len(groupIDs) == 0 {
		return nil
	}
	if err := t.afterWrite(ctx, id, t.api.AddToGroups(ctx, id, groupIDs)); err != nil {
		if len(groupIDs) == 1 && cipherscale.IsNotFound(err) && !errors.Is(err, ErrUserGone) {
			t.setGroupRefused(groupIDs[0], true)
		}
		return err
	}
	for _, g := range groupIDs {
		t.setGroupRefused(g, false)
	}
	t.mu.Lock()
	for _, g := range groupIDs {
		t.seenGroups[normalizeID(g)] = struct{}{}
	}
	t.mu.Unlock()
	t.mutate(id, func(u *cipherscale.User) {
		have := map[string]struct{}{}
		for _, g := range u.Groups {
			have[normalizeID(g.ID)] = struct{}{}
		}
		for _, g := range groupIDs {
			if _, ok := have[normalizeID(g)]; !ok {
				u.Groups = append(u.Groups, cipherscale.Group{ID: g, Name: t.groupNames[normalizeID(g)]})
				have[normalizeID(g)] = struct{}{}
			}
		}
	})
	return nil
}

// RemoveFromGroup removes the user from a group and records the result.
func (t *Tenant) RemoveFromGroup(ctx context.Context, id, groupID string) error {
	if err := t.afterWrite(ctx, id, t.api.RemoveFromGroup(ctx, id, groupID)); err != nil {
		return err
	}
	t.mutate(id, func(u *cipherscale.User) {
		gid := normalizeID(groupID)
		groups := u.Groups[:0:0]
		for _, g := range u.Groups {
			if normalizeID(g.ID) != gid {
				groups = append(groups, g)
			}
		}
		u.Groups = groups
	})
	return nil
}

// Deactivate deactivates the user and records the response.
func (t *Tenant) Deactivate(ctx context.Context, id string) error {
	u, err := t.api.DeactivateUser(ctx, id)
	if err = t.afterWrite(ctx, id, err); err != nil {
		return err
	}
	if u != nil && u.ID != "" {
		t.store(u)
	} else {
		t.mutate(id, func(u *cipherscale.User) { u.Status = cipherscale.StatusInactive })
	}
	return nil
}

// Reactivate reactivates the user and records the response.
func (t *Tenant) Reactivate(ctx context.Context, id string) error {
	u, err := t.api.ReactivateUser(ctx, id)
	if err = t.afterWrite(ctx, id, err); err != nil {
		return err
	}
	if u != nil && u.ID != "" {
		t.store(u)
		return nil
	}
	// No user in the answer: read it by id rather than the whole tenant.
	_, _, err = t.Get(ctx, id, true)
	return err
}

// ResendInvitation resends the invitation of a pending user. A 409 (not pending any more) means
// the snapshot was wrong about the user: it is read again by id, and the 409 returned.
func (t *Tenant) ResendInvitation(ctx context.Context, id string) error {
	err := t.afterWrite(ctx, id, t.api.ResendInvitation(ctx, id))
	if cipherscale.IsConflict(err) {
		if _, _, gerr := t.Get(ctx, id, true); gerr != nil {
			return errors.Join(err, gerr)
		}
	}
	return err
}

// Delete deletes the user. A user already gone counts as done.
func (t *Tenant) Delete(ctx context.Context, id string) error {
	if err := t.api.DeleteUser(ctx, id); err != nil && !cipherscale.IsNotFound(err) {
		return err
	}
	t.forget(id)
	return nil
}
