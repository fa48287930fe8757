package plan

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// UndeclaredPolicy says what the operator does about a tenant's undeclared users: the values of
// a tenant's spec.undeclaredUsers.policy.
type UndeclaredPolicy string

// The undeclared-users policies.
const (
	// UndeclaredIgnore leaves undeclared users alone and reports nothing (the default).
	UndeclaredIgnore UndeclaredPolicy = "Ignore"
	// UndeclaredReport reports them and writes nothing.
	UndeclaredReport UndeclaredPolicy = "Report"
	// UndeclaredDeactivate reports them and deactivates those past the grace period.
	UndeclaredDeactivate UndeclaredPolicy = "Deactivate"
	// UndeclaredDelete reports them and deletes those past the grace period.
	UndeclaredDelete UndeclaredPolicy = "Delete"
)

// MaxUndeclaredEmails is how many emails the report lists.
const MaxUndeclaredEmails = 20

// UndeclaredInput is what the undeclared-users decision depends on.
type UndeclaredInput struct {
	// Users is every user of the tenant.
	Users []cipherscale.User
	// Declared is the emails that the tenant's CipherscaleUsers and its memberships' email
	// members name, in any case. Objects being deleted still declare their email: their own
	// finalizer removes their user.
	Declared []string
	// Exclude is the address patterns never acted on (see MatchExclude).
	Exclude []string
	// Policy is the tenant's policy; "" is Ignore.
	Policy UndeclaredPolicy
	// GracePeriod is how long a user must have been undeclared before it is acted on.
	GracePeriod time.Duration
	// FirstSeen is the caller's record of when each user (by normalized id) was first seen
	// undeclared and open to action. It is read, never modified.
	FirstSeen map[string]time.Time
	// Now is the time of the decision.
	Now time.Time
}

// UndeclaredSummary is what status.undeclared says.
type UndeclaredSummary struct {
	// Count is how many tenant users no object declares, the owner and excluded addresses
	// included: they are undeclared, only never acted on.
	Count int
	// Emails is the first MaxUndeclaredEmails of their normalized emails, sorted.
	Emails []string
}

// UndeclaredPlan is the decision about a tenant's undeclared users.
type UndeclaredPlan struct {
	// Declared is how many tenant users some object declares (status.declared), whatever the
	// policy.
	Declared int
	// Report is nil under Ignore.
	Report *UndeclaredSummary
	// FirstSeen is the record for the caller to keep in place of the one it passed: undeclared
	// users open to action, with when they were first seen so. A user declared again, excluded,
	// or gone from the tenant leaves it.
	FirstSeen map[string]time.Time
	// Deactivate and Delete are the ids of the users past the grace period to deactivate or
	// delete, the longest undeclared first. Never the owner or an excluded address; Deactivate
	// leaves out users already inactive or in a status this operator does not know.
	Deactivate []string
	Delete     []string
	// Protected is how many undeclared users are never acted on: the owner, excluded addresses
	// (and a user without an id). Zero under Ignore and Report, which act on nobody.
	Protected int
	// InGrace is how many undeclared users open to action are still within the grace period,
	// and NextDue how long until the first of them is due (zero when none is).
	InGrace int
	NextDue time.Duration
}

// Empty reports whether the plan makes no call.
func (p UndeclaredPlan) Empty() bool { return len(p.Deactivate) == 0 && len(p.Delete) == 0 }

// String says what the plan reports and does, without emails.
func (p UndeclaredPlan) String() string {
	if p.Report == nil {
		return fmt.Sprintf("declared %d, undeclared users ignored", p.Declared)
	}
	return fmt.Sprintf("declared %d, undeclared %d (protected %d, in grace %d), deactivate %d, delete %d",
		p.Declared, p.Report.Count, p.Protected, p.InGrace, len(p.Deactivate), len(p.Delete))
}

// ValidateUndeclaredPolicy reports an unknown policy ("" is Ignore).
func ValidateUndeclaredPolicy(p UndeclaredPolicy) error {
	switch p {
	case "", UndeclaredIgnore, UndeclaredReport, UndeclaredDeactivate, UndeclaredDelete:
		return nil
	}
	return fmt.Errorf("unknown undeclared-users policy %q: want Ignore, Report, Deactivate or Delete", p)
}

// ValidateExcludePattern reports a pattern that is not an address pattern: one "@" with
// something on each side, no space, and "*" as the only wildcard.
func ValidateExcludePattern(pattern string) error {
	local, domain, ok := strings.Cut(pattern, "@")
	switch {
	case pattern == "":
		return errors.New("an exclude pattern is empty")
	case strings.ContainsAny(pattern, " \t\r\n"):
		return fmt.Errorf("exclude pattern %q contains a space", pattern)
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return fmt.Errorf("exclude pattern %q is not an address pattern like name@example.com or *@example.com", pattern)
	case strings.ContainsAny(pattern, "?[]"):
		return fmt.Errorf("exclude pattern %q uses a wildcard other than *", pattern)
	}
	return nil
}

// MatchExclude reports whether email matches pattern, case-insensitively: the whole address must
// match, and each "*" matches any run of characters, none included.
func MatchExclude(pattern, email string) bool {
	return globMatch(strings.ToLower(strings.TrimSpace(pattern)), cipherscale.NormalizeEmail(email))
}

// globMatch matches s against p, where "*" matches any run of bytes: the classic linear
// algorithm that backtracks only to the last star.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// PlanUndeclared decides what to report and do about the tenant's undeclared users. An unknown
// policy, a negative grace period or an invalid exclude pattern is an error, and then nothing is
// decided.
func PlanUndeclared(in UndeclaredInput) (UndeclaredPlan, error) {
	if err := ValidateUndeclaredPolicy(in.Policy); err != nil {
		return UndeclaredPlan{}, err
	}
	if in.GracePeriod < 0 {
		return UndeclaredPlan{}, fmt.Errorf("the grace period %v is negative", in.GracePeriod)
	}
	var errs []error
	for _, p := range in.Exclude {
		errs = append(errs, ValidateExcludePattern(p))
	}
	if err := errors.Join(errs...); err != nil {
		return UndeclaredPlan{}, err
	}

	declared := make(map[string]struct{}, len(in.Declared))
	for _, e := range in.Declared {
		if n := cipherscale.NormalizeEmail(e); n != "" {
			declared[n] = struct{}{}
		}
	}
	reports := in.Policy != "" && in.Policy != UndeclaredIgnore
	acts := in.Policy == UndeclaredDeactivate || in.Policy == UndeclaredDelete
	p := UndeclaredPlan{FirstSeen: map[string]time.Time{}}
	if reports {
		p.Report = &UndeclaredSummary{Emails: []string{}}
	}
	var emails []string
	type due struct {
		id    string
		since time.Time
	}
	var dues []due
	for i := range in.Users {
		u := &in.Users[i]
		email := cipherscale.NormalizeEmail(u.Email)
		if _, ok := declared[email]; ok && email != "" {
			p.Declared++
			continue
		}
		if !reports {
			continue
		}
		p.Report.Count++
		if email != "" {
			emails = append(emails, email)
		}
		if !acts {
			continue
		}
		id := cipherscale.NormalizeID(u.ID)
		if id == "" || u.TenantOwner() || excluded(in.Exclude, email) {
			p.Protected++
			continue
		}
		since, ok := in.FirstSeen[id]
		if !ok || since.After(in.Now) {
			since = in.Now
		}
		p.FirstSeen[id] = since
		if left := since.Add(in.GracePeriod).Sub(in.Now); left > 0 {
			p.InGrace++
			if p.NextDue == 0 || left < p.NextDue {
				p.NextDue = left
			}
			continue
		}
		if in.Policy == UndeclaredDeactivate {
			if st := u.Status.Normalized(); st == cipherscale.StatusInactive || !u.Status.Known() {
				continue
			}
		}
		dues = append(dues, due{id: id, since: since})
	}
	if p.Report != nil {
		sort.Strings(emails)
		p.Report.Emails = append(p.Report.Emails, emails[:min(len(emails), MaxUndeclaredEmails)]...)
	}
	sort.Slice(dues, func(i, j int) bool {
		if !dues[i].since.Equal(dues[j].since) {
			return dues[i].since.Before(dues[j].since)
		}
		return dues[i].id < dues[j].id
	})
	for _, d := range dues {
		if in.Policy == UndeclaredDelete {
			p.Delete = append(p.Delete, d.id)
		} else {
			p.Deactivate = append(p.Deactivate, d.id)
		}
	}
	return p, nil
}

// excluded reports whether email matches one of the patterns.
func excluded(patterns []string, email string) bool {
	for _, pat := range patterns {
		if MatchExclude(pat, email) {
			return true
		}
	}
	return false
}
