package onboarding

import (
	"context"
	"errors"
	"fmt"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// PageLister reads one page of the tenant's users (cipherscale.Client satisfies it).
type PageLister interface {
	ListUsersPage(ctx context.Context, limit, offset int, sort ...string) (*cipherscale.Page, error)
}

// Progress is told, after each page, how many distinct users were read and the total the API
// reports.
type Progress func(read, total int)

// maxReads bounds how many times the whole list is read again when it shifted under the reader.
const maxReads = 3

// ReadTenant reads every user of the tenant, page by page. A list that shifts while it is read
// (the total changes between pages, or fewer distinct users than the total arrive, as offset
// pagination skips users when others are created or deleted) is read again, up to three times in
// all; an export must not silently miss a person.
func ReadTenant(ctx context.Context, api PageLister, progress Progress) ([]cipherscale.User, error) {
	var lastErr error
	for attempt := 0; attempt < maxReads; attempt++ {
		users, err := readOnce(ctx, api, progress)
		if err == nil {
			return users, nil
		}
		var shifted *shiftError
		if !errors.As(err, &shifted) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("reading the tenant %d times: %w", maxReads, lastErr)
}

type shiftError struct{ msg string }

func (e *shiftError) Error() string { return e.msg }

func readOnce(ctx context.Context, api PageLister, progress Progress) ([]cipherscale.User, error) {
	var users []cipherscale.User
	seen := map[string]bool{}
	total := -1
	offset := 0
	for pages := 0; ; pages++ {
		p, err := api.ListUsersPage(ctx, cipherscale.MaxPageSize, offset)
		if err != nil {
			return nil, fmt.Errorf("listing users at offset %d: %w", offset, err)
		}
		if total >= 0 && p.Total != total {
			return nil, &shiftError{fmt.Sprintf("the tenant changed while it was read (%d users, then %d)", total, p.Total)}
		}
		total = p.Total
		for _, u := range p.Data {
			if !seen[u.ID] {
				seen[u.ID] = true
				users = append(users, u)
			}
		}
		if progress != nil {
			progress(len(users), total)
		}
		if !p.HasNext {
			break
		}
		if len(p.Data) == 0 || pages > total/max(1, len(p.Data))+2 {
			return nil, fmt.Errorf("listing users: the service's pagination does not end (%d pages read, total %d)", pages+1, total)
		}
		offset += len(p.Data)
	}
	if len(users) != total {
		return nil, &shiftError{fmt.Sprintf("the tenant changed while it was read (%d distinct users of a total of %d)", len(users), total)}
	}
	return users, nil
}
