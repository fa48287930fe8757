package reliability

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// maxPeakRSS is the most resident memory the manager may reach whatever the API sends.
const maxPeakRSS = 200 << 20

// resetPeakRSS makes the kernel count the manager's peak resident memory (VmHWM) from now on.
func resetPeakRSS(m *manager) {
	GinkgoHelper()
	Expect(os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", m.Cmd.Process.Pid), []byte("5"), 0)).To(Succeed())
}

// peakRSS returns the manager's peak resident memory (VmHWM) in bytes.
func peakRSS(m *manager) int64 {
	GinkgoHelper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.Cmd.Process.Pid))
	Expect(err).NotTo(HaveOccurred())
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			Expect(err).NotTo(HaveOccurred())
			return kib << 10
		}
	}
	Fail("no VmHWM in /proc/PID/status")
	return 0
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// hostileID is the UUID-shaped id of the ith user of a generated hostile page.
func hostileID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// hostilePage is a page of n minimal users from offset, served as JSON.
func hostilePage(offset, n, total int, hasNext bool) []byte {
	return hostilePageWith(offset, n, total, hasNext, "")
}

// hostilePageWith is hostilePage with extra raw JSON fields in every user (such as `,"roles":[...]`).
func hostilePageWith(offset, n, total int, hasNext bool, extra string) []byte {
	var b bytes.Buffer
	b.Grow(64 + 64*n)
	b.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"` + hostileID(offset+i) + `","status":"active"` + extra + `}`)
	}
	fmt.Fprintf(&b, `],"total":%d,"page":0,"limit":100,"hasNext":%t,"hasPrevious":false}`, total, hasNext)
	return b.Bytes()
}

// refusing matches a CipherscaleUser whose Ready condition says that the API's answer was
// refused (APIInvalidResponse) with a message containing text.
func refusing(text string) OmegaMatcher {
	return WithTransform(func(u *iamv1alpha1.CipherscaleUser) string {
		if u == nil {
			return "gone"
		}
		c := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReady)
		if c == nil {
			return "no Ready condition"
		}
		if c.Status == metav1.ConditionFalse && c.Reason == iamv1alpha1.ReasonAPIInvalidResponse && strings.Contains(c.Message, text) {
			return "reports it"
		}
		return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	}, Equal("reports it"))
}

var _ = Describe("a hostile API", Ordered, func() {
	const test = "hostile"
	var (
		sim   *simEnv
		proxy *apiProxy
		mgr   *manager
		ns    string
		users []userSpec
	)

	BeforeAll(func() {
		sim = startSim()
		proxy = startProxy(sim.URL)
		ns = newNamespace("hostile")
		// A high rate (the CRD's most requestsPerSecond), so that the endless list reaches
		// --max-tenant-users (200000) in seconds.
		mgr = startManager(managerConfig{name: "manager", apiURL: proxy.URL, namespaces: []string{ns},
			tenant: rate(1000, 2000)})
		users = makeUsers(ns, "h", 6, []string{sim.role("role")}, []string{sim.group("team")}, true)
		createAll(userObjects(users))
		waitAllReady(time.Minute, len(users), ns)
	})

	AfterAll(func() {
		Expect(mgr.Exited()).To(BeFalse(), "the manager kept running")
		Expect(mgr.probe("/healthz")).To(Equal(http.StatusOK))
		Expect(strings.ToLower(mgr.Log())).NotTo(ContainSubstring("panic"))
	})

	// attack serves the hostile answers, waits until every object reports text, checks that the
	// manager wrote nothing, sent no request outside the API's routes and stayed under
	// maxPeakRSS, then lets the API behave again and waits until every object is Ready.
	attack := func(name, text string, timeout time.Duration,
		intercept func(string, *http.Request) (int, []byte, bool), rewrite func(string, *http.Request, []byte) []byte) {
		GinkgoHelper()
		resetPeakRSS(mgr)
		start := time.Now()
		proxy.set(intercept, rewrite)
		for _, u := range users {
			Eventually(func() *iamv1alpha1.CipherscaleUser { return userObj(ns, u.Name) }, timeout, 100*time.Millisecond).
				Should(refusing(text), u.Name)
		}
		reported := time.Since(start)
		// The manager keeps retrying, with backoff, while the API misbehaves: it stays up.
		Consistently(func() int { return mgr.probe("/healthz") }, 3*time.Second, 250*time.Millisecond).Should(Equal(http.StatusOK))
		peak := peakRSS(mgr)
		c := meta.FindStatusCondition(userObj(ns, users[0].Name).Status.Conditions, iamv1alpha1.ConditionReady)
		lists := proxy.count(cipherscale.RouteListUsers, start)
		writes := 0
		for _, r := range []string{cipherscale.RouteCreateUsers, cipherscale.RouteUpdateProfile, cipherscale.RouteDeleteUser,
			cipherscale.RouteDeactivateUser, cipherscale.RouteReactivateUser, cipherscale.RouteResendInvitation,
			cipherscale.RoutePatchRoles, cipherscale.RouteAddToGroups, cipherscale.RouteRemoveFromGroup} {
			writes += proxy.count(r, start)
		}
		unmatched := proxy.count("unmatched", start)

		proxy.set(nil, nil)
		healed := time.Now()
		at := waitAllReady(time.Minute, len(users), ns)
		figure(test, name, fmt.Sprintf("peak RSS %s; all %d objects reported it after %s (%d list requests); "+
			"%d writes; recovered in %s; Ready=%s %s: %s", mib(peak), len(users), reported.Round(100*time.Millisecond),
			lists, writes, at.Sub(healed).Round(100*time.Millisecond), c.Status, c.Reason, c.Message))
		Expect(peak).To(BeNumerically("<", maxPeakRSS), "peak RSS %s", mib(peak))
		Expect(writes).To(BeZero(), "writes while the API was hostile")
		Expect(unmatched).To(BeZero(), "requests outside the API's routes")
		expectTenant(sim, users, nil)
	}

	listOnly := func(serve func(r *http.Request) []byte) func(string, *http.Request) (int, []byte, bool) {
		return func(route string, r *http.Request) (int, []byte, bool) {
			if route != cipherscale.RouteListUsers {
				return 0, nil, false
			}
			return http.StatusOK, serve(r), true
		}
	}
	offsetOf := func(r *http.Request) int {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		return off
	}
	// rewriteVictim changes one declared user in every page of the list; raw replaces bytes of
	// the encoded page after it, for values JSON encoding cannot carry (invalid UTF-8).
	rewriteVictim := func(victim userSpec, fn func(u map[string]any), raw func([]byte) []byte) func(string, *http.Request, []byte) []byte {
		return func(route string, _ *http.Request, body []byte) []byte {
			if route != cipherscale.RouteListUsers {
				return body
			}
			body = rewriteJSON(body, func(page map[string]any) {
				eachListedUser(page, func(u map[string]any) {
					if hasEmail(u, victim.Email) {
						fn(u)
					}
				})
			})
			if raw != nil {
				body = raw(body)
			}
			return body
		}
	}

	It("refuses one 31 MB page of minimal users without reading it", func() {
		// 490,000 users of 64 bytes: 31 MB in one answer, served for every offset.
		page := hostilePage(0, 490_000, 490_000, false)
		figure(test, "huge page: size", fmt.Sprintf("%s, %d users", mib(int64(len(page))), 490_000))
		attack("one 31 MB page", "more than the 100 users asked for", 20*time.Second,
			listOnly(func(*http.Request) []byte { return page }), nil)
	})

	It("refuses a page with more users than asked for", func() {
		attack("150 users in a page of 100", "more than the 100 users asked for", 20*time.Second,
			listOnly(func(r *http.Request) []byte { return hostilePage(offsetOf(r), 150, 150, false) }), nil)
	})

	It("refuses an id that is not a UUID, and never puts it in a path", func() {
		attack("id ../../admin/keys", `"../../admin/keys" is not a UUID`, 20*time.Second, nil,
			rewriteVictim(users[2], func(u map[string]any) { u["id"] = "../../admin/keys" }, nil))
	})

	It("refuses strings that are not valid UTF-8", func() {
		victim := users[3]
		at := strings.Index(victim.Email, "@")
		bad := victim.Email[:at] + "\xff" + victim.Email[at:]
		attack("email not UTF-8", "is not valid UTF-8", 20*time.Second, nil,
			rewriteVictim(victim, func(map[string]any) {}, func(b []byte) []byte {
				return bytes.ReplaceAll(b, []byte(victim.Email), []byte(bad))
			}))
		attack("status not UTF-8", "is not valid UTF-8", 20*time.Second, nil,
			rewriteVictim(victim, func(u map[string]any) { u["status"] = "__status__" }, func(b []byte) []byte {
				return bytes.ReplaceAll(b, []byte("__status__"), []byte("pend\xe9ing"))
			}))
	})

	It("refuses a status outside pending, active and inactive", func() {
		attack("status suspended", `"suspended", which is none of pending, active or inactive`, 20*time.Second, nil,
			rewriteVictim(users[4], func(u map[string]any) { u["status"] = "suspended" }, nil))
	})

	It("stops a list of users with 100 roles each at --max-tenant-list-mib", func() {
		roles := make([]string, 100)
		for i := range roles {
			roles[i] = fmt.Sprintf(`{"id":"11111111-0000-4000-8000-%012d","name":"role %d"}`, i, i)
		}
		extra := `,"roles":[` + strings.Join(roles, ",") + `]`
		attack("hasNext forever, 100 roles a user", "bytes of memory", 30*time.Second,
			listOnly(func(r *http.Request) []byte { return hostilePageWith(offsetOf(r), 100, 10, true, extra) }), nil)
	})

	// Last: the memory the runtime keeps after this case would show in the peaks of later ones.
	It("stops a list whose hasNext never ends at --max-tenant-users", func() {
		attack("hasNext forever with fresh ids", "more than 200000 users", 60*time.Second,
			listOnly(func(r *http.Request) []byte { return hostilePage(offsetOf(r), 100, 10, true) }), nil)
	})
})
