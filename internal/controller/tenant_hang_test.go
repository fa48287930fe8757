package controller_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Tenants whose API hangs: a read of each holds a worker of the tenant reconciler until the
// client gives up (30 s). They must not delay another team's new tenant.
var _ = Describe("Tenants whose API hangs", func() {
	It("do not delay another tenant becoming Ready: four hang, a fifth is Ready while they still do", func() {
		release := make(chan struct{})
		var hanging atomic.Int64
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hanging.Add(1)
			defer hanging.Add(-1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			http.Error(w, "released", http.StatusServiceUnavailable)
		}))
		DeferCleanup(func() { close(release); hang.Close() })

		By("four CipherscaleTenants whose API answers nothing")
		for range 4 {
			ns := newNamespace()
			newSecret(ns, "key", map[string]string{"api-key": otherKey})
			newNamespacedTenant(ns, "hangs", hang.URL, "key")
		}
		Eventually(hanging.Load, 20*time.Second, 50*time.Millisecond).Should(BeEquivalentTo(4),
			"each hanging tenant's read is in progress")

		By("another team's new tenant, while the four reads hang")
		_, url := newTenantSim()
		ns := newNamespace()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		expectTenantReady(newNamespacedTenant(ns, "qa", url, "key"))
		// Counted, not timed: Ready before any of the four reads ended (they end at the
		// client's timeout, 30 s). With 2 tenant workers it waited for them: 57 s measured.
		Expect(hanging.Load()).To(BeEquivalentTo(4), "a hanging read ended before the new tenant was Ready")
	})
})
