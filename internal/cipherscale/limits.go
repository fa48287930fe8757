package cipherscale

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The API is not trusted: every answer is checked against these bounds before the operator acts
// on it, so that a broken or hostile service can neither exhaust the manager's memory nor make it
// write to a path or a status it did not mean. Each bound is well above what a real tenant holds.
const (
	// DefaultMaxListUsers is the most users one read of the tenant may hold (Config.MaxListUsers).
	DefaultMaxListUsers = 200_000
	// DefaultMaxListMemory is the most memory, estimated, that the users of one read of the tenant
	// may take (Config.MaxListMemory).
	DefaultMaxListMemory = 64 << 20
	// ListMemoryPerUser is what each user read adds to MaxListMemory: the cap is a function of
	// the tenant's size, so that a real large tenant (a user with a few roles and groups is
	// estimated at 400 to 800 bytes) is never refused, while a list of users of unusual size
	// (an API sending 100 roles a user, 20 KiB each) is, after MaxListMemory.
	ListMemoryPerUser = 2 << 10

	// maxEmailLen is the longest email address (RFC 5321: 254 octets in a path).
	maxEmailLen = 254
	// maxNameLen bounds names (first and last names, role, group and device names) and the short
	// strings of roles and devices.
	maxNameLen = 256
	// maxDescriptionLen bounds role and group descriptions.
	maxDescriptionLen = 1024
	// maxURLLen bounds the profile image URL.
	maxURLLen = 2048
	// maxPostureLen bounds a device's posture object, kept as raw JSON.
	maxPostureLen = 4096
	// maxRolesPerUser, maxGroupsPerUser and maxDevicesPerUser bound the lists of one user.
	maxRolesPerUser   = 100
	maxGroupsPerUser  = 1000
	maxDevicesPerUser = 100
	// listAttempts is how many times ListUsers reads the whole list when it shifted under it.
	listAttempts = 4
	// minAveragePage is the smallest average page, in users, a list may be served in: it sets
	// the cap on pages, MaxListUsers/minAveragePage.
	minAveragePage = 10
)

// ErrListTooLarge is wrapped by the *DecodeError of a list read that went past MaxListUsers or
// MaxListMemory: the tenant is larger than the client is configured to read, or the service
// does not stop sending users.
var ErrListTooLarge = errors.New("the user list is larger than the client is configured to read")

// ErrListChanged is wrapped by the error of a list read that found the list shifted under it
// (users deleted or created while it was read page by page) on every one of its attempts. It is
// transient: the read can succeed once the tenant is quieter.
var ErrListChanged = errors.New("the user list kept changing while it was read")

// IsUUID reports whether s has the form of a UUID: 8-4-4-4-12 hexadecimal digits, in any case.
// Ids of users, roles and groups are UUIDs; nothing else is ever put in a request path.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// quoteBad renders a refused value for a message: quoted, cut to 40 bytes, invalid UTF-8 and
// control characters escaped, so that a hostile value cannot forge log lines or conditions.
func quoteBad(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%+q... (%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%+q", s)
}

// checkString refuses a string of the API that is longer than max bytes, not valid UTF-8, or
// that holds U+FFFD: encoding/json turns invalid UTF-8 and lone surrogates into U+FFFD, so a
// decoded U+FFFD is how a string that was not valid UTF-8 shows. control also refuses control
// characters.
func checkString(what, s string, maxLen int, control bool) error {
	switch {
	case len(s) > maxLen:
		return fmt.Errorf("%s is %d bytes long, more than the %d allowed", what, len(s), maxLen)
	case !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError):
		return fmt.Errorf("%s %s is not valid UTF-8", what, quoteBad(s))
	case control && strings.ContainsFunc(s, isControl):
		return fmt.Errorf("%s %s holds control characters", what, quoteBad(s))
	}
	return nil
}

// isControl reports C0 and C1 control characters and the Unicode bidirectional formatting
// characters, which can make a value read as another.
func isControl(r rune) bool {
	switch {
	case r < 0x20 || (r >= 0x7f && r < 0xa0):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// checkAPIID refuses an id from the API that is not a UUID.
func checkAPIID(what, id string) error {
	if !IsUUID(id) {
		if err := checkString(what, id, 64, true); err != nil {
			return err
		}
		return fmt.Errorf("%s %s is not a UUID", what, quoteBad(id))
	}
	return nil
}

// checkUser refuses a user the client cannot rely on: an id that is not a UUID, a status outside
// pending, active and inactive (compared case-insensitively), a string longer than any real one
// or not valid UTF-8, more roles, groups or devices than a user can have.
func checkUser(u *User) error {
	if strings.TrimSpace(u.ID) == "" {
		return errors.New("a user has no id")
	}
	if err := checkAPIID("user id", u.ID); err != nil {
		return err
	}
	if strings.TrimSpace(string(u.Status)) == "" {
		return fmt.Errorf("user %s has no status", u.ID)
	}
	if err := checkString("status", string(u.Status), 32, true); err != nil {
		return fmt.Errorf("user %s: %w", u.ID, err)
	}
	if !u.Status.Known() {
		return fmt.Errorf("user %s has the status %s, which is none of pending, active or inactive",
			u.ID, quoteBad(string(u.Status)))
	}
	for _, f := range []struct {
		what    string
		s       string
		max     int
		control bool
	}{
		{"email", u.Email, maxEmailLen, true},
		{"firstName", u.FirstName, maxNameLen, true},
		{"lastName", u.LastName, maxNameLen, true},
		{"image", u.Image, maxURLLen, true},
	} {
		if err := checkString(f.what, f.s, f.max, f.control); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
	}
	switch {
	case len(u.Roles) > maxRolesPerUser:
		return fmt.Errorf("user %s has %d roles, more than the %d allowed", u.ID, len(u.Roles), maxRolesPerUser)
	case len(u.Groups) > maxGroupsPerUser:
		return fmt.Errorf("user %s has %d groups, more than the %d allowed", u.ID, len(u.Groups), maxGroupsPerUser)
	case len(u.Devices) > maxDevicesPerUser:
		return fmt.Errorf("user %s has %d devices, more than the %d allowed", u.ID, len(u.Devices), maxDevicesPerUser)
	}
	for i := range u.Roles {
		if err := checkRole(&u.Roles[i]); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
	}
	for i := range u.Groups {
		if err := checkGroup(&u.Groups[i]); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
	}
	for i := range u.Devices {
		if err := checkDevice(&u.Devices[i]); err != nil {
			return fmt.Errorf("user %s: device %d: %w", u.ID, i, err)
		}
	}
	return nil
}

// checkRole refuses a role whose id is not a UUID or whose strings are out of bounds.
func checkRole(r *Role) error {
	if err := checkAPIID("role id", r.ID); err != nil {
		return err
	}
	if err := checkString("role name", r.Name, maxNameLen, true); err != nil {
		return err
	}
	if err := checkString("role description", r.Description, maxDescriptionLen, false); err != nil {
		return err
	}
	return checkString("role type", string(r.Type), maxNameLen, true)
}

func checkGroup(g *Group) error {
	if err := checkAPIID("group id", g.ID); err != nil {
		return err
	}
	if err := checkString("group name", g.Name, maxNameLen, true); err != nil {
		return err
	}
	return checkString("group description", g.Description, maxDescriptionLen, false)
}

// checkDevice bounds a device, which the operator never reads: its id need not be a UUID.
func checkDevice(d *Device) error {
	for _, f := range []struct{ what, s string }{
		{"id", d.ID}, {"name", d.Name}, {"status", d.Status}, {"hardwareId", d.HardwareID}, {"appVersion", d.AppVersion},
	} {
		if err := checkString(f.what, f.s, maxNameLen, false); err != nil {
			return err
		}
	}
	if d.User != nil {
		if err := checkString("user email", d.User.Email, maxEmailLen, false); err != nil {
			return err
		}
		for _, s := range []string{d.User.ID, d.User.FirstName, d.User.LastName} {
			if err := checkString("user field", s, maxNameLen, false); err != nil {
				return err
			}
		}
	}
	if len(d.Posture) > maxPostureLen {
		return fmt.Errorf("posture is %d bytes long, more than the %d allowed", len(d.Posture), maxPostureLen)
	}
	return nil
}

// userFootprint estimates the memory a decoded user takes, for Config.MaxListMemory.
func userFootprint(u *User) int64 {
	const (
		userSize   = 256
		roleSize   = 160
		groupSize  = 120
		deviceSize = 300
	)
	n := int64(userSize + len(u.ID) + len(u.Email) + len(u.Status) + len(u.FirstName) + len(u.LastName) + len(u.Image))
	for i := range u.Roles {
		r := &u.Roles[i]
		n += int64(roleSize + len(r.ID) + len(r.Name) + len(r.Description) + len(r.Type))
	}
	for i := range u.Groups {
		g := &u.Groups[i]
		n += int64(groupSize + len(g.ID) + len(g.Name) + len(g.Description))
	}
	for i := range u.Devices {
		d := &u.Devices[i]
		n += int64(deviceSize + len(d.ID) + len(d.Name) + len(d.Status) + len(d.HardwareID) + len(d.AppVersion) + len(d.Posture))
		if d.User != nil {
			n += int64(100 + len(d.User.ID) + len(d.User.Email) + len(d.User.FirstName) + len(d.User.LastName))
		}
	}
	return n
}
