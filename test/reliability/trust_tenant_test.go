package reliability

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// The attacks of issue 21 on tenant objects (7: a confused deputy, 9: spec.url as a port
// scanner) and the busy-tenant story, against the built manager, by a person whose rights are
// a Role in one namespace: CipherscaleTenants, CipherscaleUsers and memberships, no Secrets
// (namespaceUser, trust_members_test.go).

// apiKeyRecorder is an HTTP server on loopback that records every connection and every apikey
// header it is sent.
type apiKeyRecorder struct {
	URL   string
	Port  int
	conns atomic.Int32
	mu    sync.Mutex
	keys  []string
}

func startRecorder() *apiKeyRecorder {
	GinkgoHelper()
	rec := &apiKeyRecorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.keys = append(rec.keys, r.Header.Get("apikey"))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":[],"total":0,"page":0,"limit":100,"hasNext":false,"hasPrevious":false}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.conns.Add(1)
		}
	}
	srv.Start()
	DeferCleanup(srv.Close)
	rec.URL = srv.URL
	rec.Port = srv.Listener.Addr().(*net.TCPAddr).Port
	return rec
}

func (r *apiKeyRecorder) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

// tenantState returns "Ready=<status> <reason>, Stalled=<status> <reason>: <message>" of a
// CipherscaleTenant, read as the cluster's administrator.
func tenantState(ns, name string) func() string {
	return func() string {
		t := &iamv1alpha1.CipherscaleTenant{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, t); err != nil {
			return err.Error()
		}
		return conditionsOf(t.Status.Conditions)
	}
}

func conditionsOf(conds []metav1.Condition) string {
	part := func(typ string) string {
		c := meta.FindStatusCondition(conds, typ)
		if c == nil {
			return typ + "=none"
		}
		return fmt.Sprintf("%s=%s %s", typ, c.Status, c.Reason)
	}
	msg := ""
	if c := meta.FindStatusCondition(conds, iamv1alpha1.ConditionReady); c != nil {
		msg = c.Message
	}
	return part(iamv1alpha1.ConditionReady) + ", " + part(iamv1alpha1.ConditionStalled) + ", " +
		part(iamv1alpha1.ConditionReconciling) + ": " + msg
}

func nsTenant(ns, name, url, secret, key string) *iamv1alpha1.CipherscaleTenant {
	return &iamv1alpha1.CipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: iamv1alpha1.CipherscaleTenantSpec{
			APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: secret, Key: key},
			TenantSettings:  iamv1alpha1.TenantSettings{URL: url, ResyncInterval: &metav1.Duration{Duration: resync}},
		},
	}
}

var _ = Describe("trust: tenant objects", func() {
	It("attack 7: a tenant object uses no Secret that does not consent to it (a confused deputy)", func() {
		const test = "trust-tenant: confused deputy"
		ns := newNamespace("deputy")
		startManager(managerConfig{name: "manager", apiURL: startSim().URL, namespaces: []string{ns}})
		mallory := namespaceUser(ns)

		const password = "db-password-never-sent-5c1d"
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-creds"},
			StringData: map[string]string{"password": password}})).To(Succeed())
		err := mallory.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-creds"}, &corev1.Secret{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the attacker must not read the Secret: %v", err)

		rec := startRecorder()
		Expect(mallory.Create(ctx, nsTenant(ns, "steal", rec.URL, "db-creds", "password"))).To(Succeed())
		Eventually(tenantState(ns, "steal"), 30*time.Second, 200*time.Millisecond).
			Should(HavePrefix("Ready=False InvalidSecret, Stalled=True InvalidSecret"))
		Consistently(rec.sent, 3*resync, 200*time.Millisecond).Should(BeEmpty(), "the Secret's value was sent")
		Expect(rec.conns.Load()).To(BeZero(), "the operator connected to the attacker's URL")
		msg := tenantState(ns, "steal")()
		Expect(msg).To(ContainSubstring(iamv1alpha1.AnnotationAllowedTenants))
		Expect(msg).NotTo(ContainSubstring(password))

		By("a Secret that consents to another tenant object of the namespace only")
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qa-key",
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/qa"}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())
		Expect(mallory.Create(ctx, nsTenant(ns, "steal-qa", rec.URL, "qa-key", ""))).To(Succeed())
		Eventually(tenantState(ns, "steal-qa"), 30*time.Second, 200*time.Millisecond).
			Should(HavePrefix("Ready=False InvalidSecret, Stalled=True InvalidSecret"))
		Consistently(rec.sent, 3*resync, 200*time.Millisecond).Should(BeEmpty(), "a key was sent")

		By("the tenant the Secret names: the key reaches its URL (the recorder would have seen a theft)")
		Expect(k8s.Create(ctx, nsTenant(ns, "qa", rec.URL, "qa-key", ""))).To(Succeed())
		Eventually(rec.sent, 30*time.Second, 200*time.Millisecond).Should(ContainElement(apiKey))
		Expect(rec.sent()).NotTo(ContainElement(password))
		figure(test, "requests with db-creds or another tenant's Secret", "0")
	})

	It("attack 9: spec.url is refused outside the operator's hosts, before any connection", func() {
		const test = "trust-tenant: port scanner"
		ns := newNamespace("scanner")
		rec := startRecorder()
		// The shipped policy: https to public-api.cipherscale.com only (the args override the
		// suite's test policy).
		mgr := startManager(managerConfig{name: "manager", apiURL: startSim().URL, namespaces: []string{ns},
			args: []string{"--api-hosts=public-api.cipherscale.com", "--allow-insecure-http=false"}})
		mallory := namespaceUser(ns)
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "key",
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/metadata,CipherscaleTenant/probes," +
				"CipherscaleTenant/loopback,CipherscaleTenant/loopback-tls,CipherscaleTenant/localhost,CipherscaleTenant/in-cluster,CipherscaleTenant/pod"}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())
		targets := map[string]string{
			"metadata":     "https://169.254.169.254/latest/meta-data",
			"probes":       fmt.Sprintf("http://127.0.0.1:%d/", mgr.probePort),
			"loopback":     rec.URL,
			"loopback-tls": fmt.Sprintf("https://127.0.0.1:%d/", rec.Port),
			"localhost":    fmt.Sprintf("http://localhost:%d/", rec.Port),
			"in-cluster":   "https://kubernetes.default.svc/api",
			"pod":          "https://10.96.0.1:443/",
		}
		// Plain http to a remote host is refused by the CRD's validation already.
		err := mallory.Create(ctx, nsTenant(ns, "metadata-http", "http://169.254.169.254/latest/meta-data", "key", ""))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		for name, url := range targets {
			Expect(mallory.Create(ctx, nsTenant(ns, name, url, "key", ""))).To(Succeed(), name)
		}
		for name := range targets {
			Eventually(tenantState(ns, name), 30*time.Second, 200*time.Millisecond).
				Should(HavePrefix("Ready=False InvalidURL, Stalled=True InvalidURL"), name)
			msg := tenantState(ns, name)()
			Expect(msg).To(Or(ContainSubstring("--api-hosts"), ContainSubstring("--allow-insecure-http")), name)
		}
		Consistently(rec.conns.Load, 3*resync, 200*time.Millisecond).Should(BeZero(), "the operator connected to a refused URL")
		figure(test, "connections to refused URLs", "0")
	})

	It("attack 9: a tenant's status says only that its API could not be reached, never what answered", func() {
		ns := newNamespace("unreachable")
		// The test policy: loopback over plain http is allowed, so the calls are made.
		startManager(managerConfig{name: "manager", apiURL: startSim().URL, namespaces: []string{ns}})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		closed := l.Addr().(*net.TCPAddr).Port
		Expect(l.Close()).To(Succeed())
		// Something that is no Cipherscale API: a 404 with a body.
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("nginx/1.25 internal admin panel"))
		}))
		DeferCleanup(other.Close)
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "key",
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/closed,CipherscaleTenant/other"}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())
		mallory := namespaceUser(ns)
		Expect(mallory.Create(ctx, nsTenant(ns, "closed", fmt.Sprintf("http://127.0.0.1:%d/", closed), "key", ""))).To(Succeed())
		Expect(mallory.Create(ctx, nsTenant(ns, "other", other.URL, "key", ""))).To(Succeed())
		Eventually(tenantState(ns, "closed"), 60*time.Second, 200*time.Millisecond).
			Should(ContainSubstring("could not be reached"))
		Eventually(tenantState(ns, "other"), 60*time.Second, 200*time.Millisecond).
			Should(ContainSubstring("unexpected status"))
		for _, name := range []string{"closed", "other"} {
			state := strings.ToLower(tenantState(ns, name)())
			for _, leak := range []string{"refused", "dial", "connect:", "404", "nginx", "admin panel", "tls", "x509"} {
				Expect(state).NotTo(ContainSubstring(leak), name)
			}
		}
		var events eventsv1.EventList
		Expect(k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		for _, e := range events.Items {
			note := strings.ToLower(e.Note)
			Expect(note).NotTo(Or(ContainSubstring("refused"), ContainSubstring("nginx"), ContainSubstring("404")), e.Note)
		}
	})

	It("busy is not broken: a tenant answering only 429 keeps its objects Reconciling/APIUnavailable, never Stalled, until it recovers", func() {
		const test = "trust-tenant: busy tenant"
		ns := newNamespace("busy")
		sim := startSim()
		startManager(managerConfig{name: "manager", apiURL: startSim().URL, namespaces: []string{ns}})
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "key",
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/busy"}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())
		team := namespaceUser(ns)
		Expect(team.Create(ctx, nsTenant(ns, "busy", sim.URL, "key", ""))).To(Succeed())
		Eventually(tenantState(ns, "busy"), 30*time.Second, 200*time.Millisecond).Should(HavePrefix("Ready=True"))

		By("the tenant answering nothing but 429")
		sim.SetFaults([]simulator.FaultRule{{Status: http.StatusTooManyRequests, RetryAfterSeconds: 1}})
		Eventually(tenantState(ns, "busy"), 30*time.Second, 200*time.Millisecond).
			Should(HavePrefix("Ready=False APIUnavailable, Stalled=none, Reconciling=True APIUnavailable"))
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "busy"}
		users := makeUsers(ns, "b", 3, nil, nil, false)
		for _, u := range users {
			obj := u.object()
			obj.Spec.TenantRef = ref
			Expect(team.Create(ctx, obj)).To(Succeed())
		}
		state := func(name string) func() string {
			return func() string {
				u := userObj(ns, name)
				if u == nil {
					return "gone"
				}
				return conditionsOf(u.Status.Conditions)
			}
		}
		for _, u := range users {
			Eventually(state(u.Name), 30*time.Second, 200*time.Millisecond).
				Should(HavePrefix("Ready=False APIUnavailable, Stalled=none, Reconciling=True APIUnavailable"), u.Name)
		}
		for _, u := range users {
			Consistently(state(u.Name), 2*resync, 200*time.Millisecond).Should(ContainSubstring("Stalled=none"), u.Name)
		}
		var events eventsv1.EventList
		Expect(k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		for _, e := range events.Items {
			Expect(e.Type).NotTo(Equal(corev1.EventTypeWarning), "%s %s: %s", e.Regarding.Name, e.Reason, e.Note)
		}

		By("the tenant answering again")
		healed := time.Now()
		sim.SetFaults(nil)
		for _, u := range users {
			Eventually(state(u.Name), 60*time.Second, 200*time.Millisecond).Should(HavePrefix("Ready=True"), u.Name)
		}
		Eventually(tenantState(ns, "busy"), 30*time.Second, 200*time.Millisecond).Should(HavePrefix("Ready=True"))
		counts, _ := sim.usersByEmail()
		for _, u := range users {
			Expect(counts).To(HaveKeyWithValue(u.Email, 1), u.Email)
		}
		figure(test, "recovered after the 429s stopped in", time.Since(healed).Round(100*time.Millisecond).String())
	})
})
