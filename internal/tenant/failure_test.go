package tenant_test

import (
	"testing"
	"time"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// While the API fails, lookups within a second of a failed read share its error instead of
// each reading the tenant again; after that second one read is tried again.
func TestFailedReadIsRememberedBriefly(t *testing.T) {
	sim, api := newSim(t)
	clk := newClock()
	tn := tenant.New(api, tenant.Options{MaxAge: time.Minute, Now: clk.Now})
	sim.SetFaults([]simulator.FaultRule{{Route: cipherscale.RouteListUsers, Status: 400}})
	ctx := ctxT(t)

	for range 10 {
		if _, err := tn.Lookup(ctx, "a@example.com"); !cipherscale.IsBadRequest(err) {
			t.Fatalf("Lookup: got %v, want the failed read's 400", err)
		}
	}
	if got := listRequests(sim); got != 1 {
		t.Fatalf("list requests within a second of a failure: got %d, want 1", got)
	}

	clk.Advance(1100 * time.Millisecond)
	sim.ClearFaults()
	if _, err := tn.Lookup(ctx, "a@example.com"); err != nil {
		t.Fatalf("Lookup after the failure's second: %v", err)
	}
	if got := listRequests(sim); got != 2 {
		t.Fatalf("list requests after a second: got %d, want 2", got)
	}
}
