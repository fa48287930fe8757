package tenant_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// fatAPI lists users as a real tenant sends them: devices, and roles and groups with
// descriptions and timestamps.
type fatAPI struct {
	cipherscale.API // nil: only ListUsers is called
	n               int
}

func (a *fatAPI) ListUsers(context.Context) ([]cipherscale.User, error) {
	now := time.Now()
	desc := strings.Repeat("A role that lets its holder administer the tenant's network policies. ", 4)
	out := make([]cipherscale.User, a.n)
	for i := range out {
		out[i] = cipherscale.User{
			ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Email: fmt.Sprintf("user%d@example.com", i),
			Status: cipherscale.StatusActive, FirstName: "Given", LastName: "Family", CreatedAt: now, UpdatedAt: now,
			Roles: cipherscale.RoleList{
				{ID: "11111111-0000-4000-8000-000000000001", Name: "Network admin", Description: desc, Type: "CUSTOM", CreatedAt: &now, UpdatedAt: &now},
				{ID: "11111111-0000-4000-8000-000000000002", Name: "Auditor", Description: desc, Type: "AUDITOR", CreatedAt: &now, UpdatedAt: &now},
			},
			Groups: []cipherscale.Group{{ID: "22222222-0000-4000-8000-000000000001", Name: "Engineering", Description: desc, CreatedAt: &now, UpdatedAt: &now}},
			Devices: []cipherscale.Device{
				{ID: fmt.Sprintf("33333333-0000-4000-8000-%012d", i), Name: "laptop", Status: "active", HardwareID: strings.Repeat("f", 64), AppVersion: "4.2.1"},
				{ID: fmt.Sprintf("44444444-0000-4000-8000-%012d", i), Name: "phone", Status: "active", HardwareID: strings.Repeat("e", 64), AppVersion: "4.2.1"},
			},
		}
	}
	return out, nil
}

// TestSnapshotIsCompact: the snapshot of a tenant whose users carry devices and described
// roles and groups keeps what the plans read, at most 768 bytes a user (the list as sent takes
// several times that): a tenant of 100,000 users is under 75 MiB.
func TestSnapshotIsCompact(t *testing.T) {
	const n = 20000
	api := &fatAPI{n: n}
	tn := tenant.New(api, tenant.Options{MaxAge: time.Minute, Now: newClock().Now})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := tn.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perUser := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d users: %d bytes a user in the snapshot", tn.Len(), perUser)
	if perUser > 768 {
		t.Errorf("the snapshot takes %d bytes a user, want at most 768", perUser)
	}
	u, _, err := tn.Get(ctxT(t), fmt.Sprintf("00000000-0000-4000-8000-%012d", 7), false)
	if err != nil || u.Email != "user7@example.com" || len(u.Roles) != 2 || u.Roles[0].Name != "Network admin" ||
		u.Roles[1].Type != "AUDITOR" || len(u.Groups) != 1 || u.Groups[0].Name != "Engineering" {
		t.Errorf("the snapshot lost what the plans read: %+v, %v", u, err)
	}
	runtime.KeepAlive(tn)
}
