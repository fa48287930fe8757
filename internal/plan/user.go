package plan

import (
	"fmt"
	"strings"
	"time"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// UserPlan is the calls that bring one tenant user to its CipherscaleUser's spec, in the order
// they are made. The zero value makes no call.
type UserPlan struct {
	// Reactivate the user first, so that later writes apply to an active account.
	Reactivate bool
	// Profile holds the profile fields to PUT, nil when the profile matches.
	Profile *cipherscale.ProfileUpdate
	// Roles holds the direct roles to add and remove in one PATCH, nil when they match.
	Roles *cipherscale.RolesPatch
	// AddGroups and RemoveGroups are the group changes the membership rule gives this user's
	// CipherscaleUser to make.
	AddGroups    []string
	RemoveGroups []string
	// Deactivate the user last.
	Deactivate bool
	// OwnerProtected is set when the user is the tenant owner, which is read-only to the
	// operator: the plan makes no call, whatever the spec asks.
	OwnerProtected bool
	// Withheld says what the spec asks of the owner that differs from the owner's state, ""
	// when nothing does (set only with OwnerProtected).
	Withheld string
	// UnknownStatus is set when the API reported a status this operator does not know: the
	// active state is then left alone.
	UnknownStatus cipherscale.Status
}

// Empty reports whether the plan makes no call.
func (p UserPlan) Empty() bool {
	return !p.Reactivate && p.Profile == nil && p.Roles == nil && len(p.AddGroups) == 0 &&
		len(p.RemoveGroups) == 0 && !p.Deactivate
}

// String says what the plan changes, without emails or other personal data.
func (p UserPlan) String() string {
	var parts []string
	if p.Reactivate {
		parts = append(parts, "reactivate")
	}
	if p.Profile != nil {
		var fields []string
		if p.Profile.FirstName != nil {
			fields = append(fields, "firstName")
		}
		if p.Profile.LastName != nil {
			fields = append(fields, "lastName")
		}
		if p.Profile.Image != nil {
			fields = append(fields, "image")
		}
		parts = append(parts, "profile ("+strings.Join(fields, ", ")+")")
	}
	if p.Roles != nil {
		parts = append(parts, fmt.Sprintf("roles +%d -%d", len(p.Roles.AddedRoles), len(p.Roles.RemovedRoles)))
	}
	if len(p.AddGroups) > 0 || len(p.RemoveGroups) > 0 {
		parts = append(parts, fmt.Sprintf("groups +%d -%d", len(p.AddGroups), len(p.RemoveGroups)))
	}
	if p.Deactivate {
		parts = append(parts, "deactivate")
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}

// WantsActive returns the active state the spec asks for (true when unset).
func WantsActive(spec *iamv1alpha1.CipherscaleUserSpec) bool {
	return spec.Active == nil || *spec.Active
}

// PlanUser diffs the spec against the live user. groupAdd and groupRemove are the decisions of
// the membership rule for the pairs this CipherscaleUser is responsible for (see UserGroups).
//
// The tenant owner is read-only: for the owner the plan makes no call, and says in Withheld what
// it would have changed.
func PlanUser(spec *iamv1alpha1.CipherscaleUserSpec, live *cipherscale.User, groupAdd, groupRemove []string) UserPlan {
	p := planUser(spec, live, groupAdd, groupRemove)
	if !live.TenantOwner() {
		return p
	}
	withheld := ""
	if !p.Empty() {
		withheld = p.String()
	}
	return UserPlan{OwnerProtected: true, Withheld: withheld, UnknownStatus: p.UnknownStatus}
}

func planUser(spec *iamv1alpha1.CipherscaleUserSpec, live *cipherscale.User, groupAdd, groupRemove []string) UserPlan {
	var p UserPlan
	status := live.Status.Normalized()
	switch {
	case !live.Status.Known():
		p.UnknownStatus = live.Status
	case WantsActive(spec) && status == cipherscale.StatusInactive:
		p.Reactivate = true
	case !WantsActive(spec) && status != cipherscale.StatusInactive:
		p.Deactivate = true
	}

	var profile cipherscale.ProfileUpdate
	changed := false
	if spec.FirstName != nil && *spec.FirstName != live.FirstName {
		profile.FirstName, changed = spec.FirstName, true
	}
	if spec.LastName != nil && *spec.LastName != live.LastName {
		profile.LastName, changed = spec.LastName, true
	}
	if spec.Image != nil && *spec.Image != live.Image {
		profile.Image, changed = spec.Image, true
	}
	if changed {
		p.Profile = &profile
	}

	if spec.Roles != nil {
		added, removed := Diff(*spec.Roles, live.RoleIDs())
		if len(added) > 0 || len(removed) > 0 {
			p.Roles = &cipherscale.RolesPatch{AddedRoles: added, RemovedRoles: removed}
		}
	}
	p.AddGroups = SortedSet(groupAdd)
	p.RemoveGroups = SortedSet(groupRemove)
	if len(p.AddGroups) == 0 {
		p.AddGroups = nil
	}
	if len(p.RemoveGroups) == 0 {
		p.RemoveGroups = nil
	}
	return p
}

// Diff returns the ids in want that have is missing, and the ids in have that want lacks,
// compared case-insensitively, each sorted and normalized.
func Diff(want, have []string) (added, removed []string) {
	w := toSet(want)
	h := toSet(have)
	for id := range w {
		if _, ok := h[id]; !ok {
			added = append(added, id)
		}
	}
	for id := range h {
		if _, ok := w[id]; !ok {
			removed = append(removed, id)
		}
	}
	return SortedSet(added), SortedSet(removed)
}

func toSet(ids []string) map[string]struct{} {
	s := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if n := NormalizeID(id); n != "" {
			s[n] = struct{}{}
		}
	}
	return s
}

// StateOf maps the API's status to status.state: Pending, Active, Inactive, or the API's own
// value when it is none of those.
func StateOf(s cipherscale.Status) iamv1alpha1.UserState {
	switch s.Normalized() {
	case cipherscale.StatusPending:
		return iamv1alpha1.UserStatePending
	case cipherscale.StatusActive:
		return iamv1alpha1.UserStateActive
	case cipherscale.StatusInactive:
		return iamv1alpha1.UserStateInactive
	}
	return iamv1alpha1.UserState(s)
}

// InvitationDecision says whether to resend a pending user's invitation now.
type InvitationDecision struct {
	// Resend is true when an invitation should be sent now.
	Resend bool
	// Requested is true when the resend answers a new value of the resend annotation (it then
	// does not count against spec.invitation.maxResends).
	Requested bool
	// RequestValue is the annotation value being answered.
	RequestValue string
	// Next is how long until an automatic resend falls due, zero when none will.
	Next time.Duration
}

// DecideInvitation decides on resending the invitation of a user in the given state.
// annotation is the value of cipherscale.com/resend-invitation ("" when absent).
func DecideInvitation(spec *iamv1alpha1.CipherscaleUserSpec, st *iamv1alpha1.InvitationStatus, state cipherscale.Status, annotation string, now time.Time) InvitationDecision {
	if state.Normalized() != cipherscale.StatusPending {
		return InvitationDecision{}
	}
	var last string
	var resends int32
	var lastSent *time.Time
	if st != nil {
		last, resends = st.LastResendRequest, st.Resends
		if st.LastSentTime != nil {
			t := st.LastSentTime.Time
			lastSent = &t
		}
	}
	if annotation != "" && annotation != last {
		return InvitationDecision{Resend: true, Requested: true, RequestValue: annotation}
	}
	if spec.Invitation == nil || lastSent == nil {
		return InvitationDecision{}
	}
	maxResends := int32(3)
	if spec.Invitation.MaxResends != nil {
		maxResends = *spec.Invitation.MaxResends
	}
	if resends >= maxResends {
		return InvitationDecision{}
	}
	due := lastSent.Add(spec.Invitation.ResendAfter.Duration)
	if !now.Before(due) {
		return InvitationDecision{Resend: true}
	}
	return InvitationDecision{Next: due.Sub(now)}
}
