package reliability

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
)

// rewriteJSON decodes a JSON object, lets fn change it and encodes it again.
func rewriteJSON(body []byte, fn func(obj map[string]any)) []byte {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return body
	}
	fn(obj)
	b, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return b
}

// eachListedUser applies fn to every user of a page of GET /tenants/users.
func eachListedUser(page map[string]any, fn func(u map[string]any)) {
	data, _ := page["data"].([]any)
	for _, d := range data {
		if u, ok := d.(map[string]any); ok {
			fn(u)
		}
	}
}

func hasEmail(u map[string]any, email string) bool {
	e, _ := u["email"].(string)
	return cipherscale.NormalizeEmail(e) == cipherscale.NormalizeEmail(email)
}

// failing matches a CipherscaleUser whose Ready condition reports an API error (APIError,
// APIUnavailable or APIInvalidResponse) with a message containing text, for the current generation.
func failing(text string) OmegaMatcher {
	return WithTransform(func(u *iamv1alpha1.CipherscaleUser) string {
		if u == nil {
			return "gone"
		}
		c := meta.FindStatusCondition(u.Status.Conditions, iamv1alpha1.ConditionReady)
		if c == nil {
			return "no Ready condition"
		}
		ok := c.Status == metav1.ConditionFalse && c.ObservedGeneration == u.Generation &&
			(c.Reason == iamv1alpha1.ReasonAPIError || c.Reason == iamv1alpha1.ReasonAPIUnavailable ||
				c.Reason == iamv1alpha1.ReasonAPIInvalidResponse) &&
			strings.Contains(c.Message, text)
		if ok {
			return "reports it"
		}
		return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	}, Equal("reports it"))
}

var _ = Describe("malformed API responses", Ordered, func() {
	const test = "malformed"
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
		ns = newNamespace("malformed")
		// Every resync reads the tenant whole: these specs attack the full read (its pagination
		// above all). Between full reads an incremental read asks for the first pages of the
		// users changed since the last read only, and meets a pagination that never ends at the
		// next full read (docs/tenants.md).
		mgr = startManager(managerConfig{name: "manager", apiURL: proxy.URL, namespaces: []string{ns},
			leaseNS: leaseNamespace(fmt.Sprintf("lease-malformed-%d", next())),
			tenant: func(t *iamv1alpha1.ClusterCipherscaleTenant) {
				t.Spec.FullResyncInterval = &metav1.Duration{}
			}})
		users = makeUsers(ns, "m", 8, []string{sim.role("role")}, []string{sim.group("team")}, true)
		createAll(userObjects(users))
		waitAllReady(time.Minute, len(users), ns)
	})

	AfterAll(func() {
		Expect(mgr.Exited()).To(BeFalse(), "the manager kept running")
		Expect(mgr.probe("/healthz")).To(Equal(http.StatusOK))
		Expect(strings.ToLower(mgr.Log())).NotTo(ContainSubstring("panic"))
	})

	// everyUserReports waits until every CipherscaleUser reports the error.
	everyUserReports := func(text string) time.Time {
		GinkgoHelper()
		for _, u := range users {
			Eventually(func() *iamv1alpha1.CipherscaleUser { return userObj(ns, u.Name) }, 20*time.Second, 50*time.Millisecond).
				Should(failing(text), u.Name)
		}
		return time.Now()
	}

	// bounded measures the requests of a route in two windows of 3s while the corruption lasts
	// (the manager staying up) and checks that the manager backs off instead of looping. A failing
	// object is retried with controller-runtime's per-object exponential backoff (5ms doubling),
	// so in its first 3s of failures it is retried about 10 times, and then at most 2 or 3 times
	// per 3s; objects is how many objects fail, calls how many requests of the route one retry
	// makes (the pages of a list).
	bounded := func(name, route string, objects, calls int) {
		GinkgoHelper()
		from := time.Now()
		Consistently(func() int { return mgr.probe("/healthz") }, 6*time.Second, 250*time.Millisecond).Should(Equal(http.StatusOK))
		w1 := proxy.countBetween(route, from, from.Add(3*time.Second))
		w2 := proxy.countBetween(route, from.Add(3*time.Second), from.Add(6*time.Second))
		figure(test, name+": "+route+" requests in two 3s windows while corrupted",
			fmt.Sprintf("%d, then %d (%d failing objects, %d requests per attempt)", w1, w2, objects, calls))
		Expect(w1).To(BeNumerically("<=", objects*12*calls))
		Expect(w2).To(BeNumerically("<=", objects*3*calls))
		Expect(w2).To(BeNumerically("<=", w1+calls), "the rate does not grow")
	}

	recovers := func(name string) {
		GinkgoHelper()
		proxy.set(nil, nil)
		start := time.Now()
		at := waitAllReady(time.Minute, len(users), ns)
		figure(test, name+": recovery", fmt.Sprintf("all %d Ready %s after the corruption stopped", len(users), at.Sub(start).Round(100*time.Millisecond)))
	}

	It("reports bad JSON in the user list on every object, backs off, and recovers", func() {
		proxy.set(nil, func(route string, _ *http.Request, body []byte) []byte {
			if route == cipherscale.RouteListUsers {
				return []byte(`{"data": [{"id": "3f1c`)
			}
			return body
		})
		everyUserReports("malformed response")
		bounded("bad JSON", cipherscale.RouteListUsers, len(users), 1)
		recovers("bad JSON")
	})

	It("reports a listed user without an id, and recovers", func() {
		victim := users[3].Email
		proxy.set(nil, func(route string, _ *http.Request, body []byte) []byte {
			if route != cipherscale.RouteListUsers {
				return body
			}
			return rewriteJSON(body, func(page map[string]any) {
				eachListedUser(page, func(u map[string]any) {
					if hasEmail(u, victim) {
						delete(u, "id")
					}
				})
			})
		})
		everyUserReports("has no id")
		c := meta.FindStatusCondition(userObj(ns, users[0].Name).Status.Conditions, iamv1alpha1.ConditionReady)
		Expect(c.Message).To(ContainSubstring("malformed response"))
		figure(test, "user without an id: condition", fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message))
		bounded("missing id", cipherscale.RouteListUsers, len(users), 1)
		recovers("missing id")
	})

	It("creates a user once when the create answer has no id", func() {
		proxy.set(nil, func(route string, _ *http.Request, body []byte) []byte {
			if route != cipherscale.RouteCreateUsers {
				return body
			}
			var created []map[string]any
			if err := json.Unmarshal(body, &created); err != nil {
				return body
			}
			for _, u := range created {
				delete(u, "id")
			}
			b, _ := json.Marshal(created)
			return b
		})
		added := makeUsers(ns, "late", 2, users[0].Roles, users[0].Groups, true)
		since := time.Now()
		createAll(userObjects(added))
		users = append(users, added...)
		at := waitAllReady(time.Minute, len(users), ns)
		proxy.set(nil, nil)
		figure(test, "create answer without ids", fmt.Sprintf("%d new users Ready %s after they were declared; %d creates, %d list reads",
			len(added), at.Sub(since).Round(100*time.Millisecond), proxy.count(cipherscale.RouteCreateUsers, since),
			proxy.count(cipherscale.RouteListUsers, since)))
		expectTenant(sim, users, nil)
	})

	It("detects a list whose hasNext never ends, and recovers", func() {
		proxy.set(func(route string, r *http.Request) (int, []byte, bool) {
			if route == cipherscale.RouteListUsers {
				// Always the first page, whatever the offset asked for.
				q := r.URL.Query()
				q.Set("offset", "0")
				r.URL.RawQuery = q.Encode()
			}
			return 0, nil, false
		}, func(route string, _ *http.Request, body []byte) []byte {
			if route != cipherscale.RouteListUsers {
				return body
			}
			return rewriteJSON(body, func(page map[string]any) { page["hasNext"] = true })
		})
		everyUserReports("pagination does not end")
		c := meta.FindStatusCondition(userObj(ns, users[0].Name).Status.Conditions, iamv1alpha1.ConditionReady)
		figure(test, "endless hasNext: condition", fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message))
		bounded("endless hasNext", cipherscale.RouteListUsers, len(users), 3)
		recovers("endless hasNext")
	})

	It("refuses an unknown status, reports it without guessing, and recovers", func() {
		victim := users[5]
		suspend := func(u map[string]any) {
			if hasEmail(u, victim.Email) {
				u["status"] = "suspended"
			}
		}
		since := time.Now()
		proxy.set(nil, func(route string, _ *http.Request, body []byte) []byte {
			switch route {
			case cipherscale.RouteListUsers:
				return rewriteJSON(body, func(page map[string]any) { eachListedUser(page, suspend) })
			case cipherscale.RouteGetUser:
				return rewriteJSON(body, suspend)
			}
			return body
		})
		everyUserReports(`"suspended"`)
		c := meta.FindStatusCondition(userObj(ns, victim.Name).Status.Conditions, iamv1alpha1.ConditionReady)
		Expect(c.Message).To(ContainSubstring("none of pending, active or inactive"))
		figure(test, "unknown status: object", fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message))
		// Nothing is guessed: no reactivation, no deactivation, and the status is never written.
		Expect(userObj(ns, victim.Name).Status.State).To(Equal(iamv1alpha1.UserStatePending))
		st := proxy.count(cipherscale.RouteReactivateUser, since) + proxy.count(cipherscale.RouteDeactivateUser, since)
		Expect(st).To(BeZero())
		recovers("unknown status")
	})

	It("reports a malformed answer of one route on the object that calls it only, backs off, and recovers", func() {
		victim := users[6]
		proxy.set(func(route string, _ *http.Request) (int, []byte, bool) {
			if route == cipherscale.RouteUpdateProfile {
				// A broken gateway: 200 with a cut body; the request never reaches the service.
				return http.StatusOK, []byte(`{"id": "`), true
			}
			return 0, nil, false
		}, nil)
		obj := userObj(ns, victim.Name)
		renamed := "Renamed"
		obj.Spec.FirstName = &renamed
		Expect(k8s.Update(ctx, obj)).To(Succeed())
		Eventually(func() *iamv1alpha1.CipherscaleUser { return userObj(ns, victim.Name) }, 20*time.Second, 50*time.Millisecond).
			Should(failing("malformed response"))
		c := meta.FindStatusCondition(userObj(ns, victim.Name).Status.Conditions, iamv1alpha1.ConditionReady)
		figure(test, "one route corrupted: condition", fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message))
		Consistently(func(g Gomega) {
			r := readyIn(ns)
			g.Expect(r.Ready).To(Equal(len(users)-1), r.String())
			g.Expect(userObj(ns, victim.Name)).To(failing("malformed response"))
		}, 2*resync, 200*time.Millisecond).Should(Succeed())
		bounded("one route", cipherscale.RouteUpdateProfile, 1, 1)
		recovers("one route")
		u, _ := sim.UserByEmail(victim.Email)
		Expect(u.FirstName).To(Equal(renamed))
	})
})
