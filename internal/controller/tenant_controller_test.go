package controller_test

import (
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/controller"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// otherKey is the key of the second tenants' simulators, not the default tenant's.
const otherKey = "second-tenant-key-4d5e6f"

// newTenantSim serves a simulator of another tenant, with three users: pending, active and
// inactive (besides the ones a new simulator holds).
func newTenantSim() (*simulator.Server, string) {
	s := simulator.New(otherKey)
	srv := httptest.NewServer(s)
	DeferCleanup(srv.Close)
	for _, seed := range []simulator.UserSeed{
		{Email: email("pending")},
		{Email: email("active"), Status: cipherscale.StatusActive},
		{Email: email("inactive"), Status: cipherscale.StatusInactive},
	} {
		_, err := s.AddUser(seed)
		Expect(err).NotTo(HaveOccurred())
	}
	return s, srv.URL
}

// newSecret creates a Secret that consents to the tenants allowTenant named for it.
func newSecret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	consent.Lock()
	if v := consent.of[ns+"/"+name]; len(v) > 0 {
		s.Annotations = map[string]string{iamv1alpha1.AnnotationAllowedTenants: strings.Join(v, ",")}
	}
	consent.Unlock()
	Expect(k8s.Create(ctx, s)).To(Succeed())
	return s
}

// consent is, per Secret (namespace/name), the tenants its annotation
// cipherscale.com/allowed-tenants names: the tenants created with it as their apiKeySecretRef.
var consent = struct {
	sync.Mutex
	of map[string][]string
}{of: map[string][]string{}}

// allowTenant makes the Secret consent to the tenant kind/name ("CipherscaleTenant/qa"), as the
// person who created the Secret for it would: now if it exists, else when newSecret creates it.
// Call it before the tenant is created, so that the tenant's first read finds the consent.
func allowTenant(ns, secret, tenant string) {
	GinkgoHelper()
	consent.Lock()
	consent.of[ns+"/"+secret] = append(consent.of[ns+"/"+secret], tenant)
	v := strings.Join(consent.of[ns+"/"+secret], ",")
	consent.Unlock()
	Eventually(func() error {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, s); err != nil {
			return client.IgnoreNotFound(err)
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[iamv1alpha1.AnnotationAllowedTenants] = v
		return k8s.Update(ctx, s)
	}).Should(Succeed())
}

func newNamespacedTenant(ns, name, url, secret string) *iamv1alpha1.CipherscaleTenant {
	t := &iamv1alpha1.CipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: iamv1alpha1.CipherscaleTenantSpec{
			APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: secret},
			TenantSettings:  iamv1alpha1.TenantSettings{URL: url},
		},
	}
	allowTenant(ns, secret, "CipherscaleTenant/"+name)
	Expect(k8s.Create(ctx, t)).To(Succeed())
	return t
}

// newClusterTenant creates a ClusterCipherscaleTenant, deleted after the test.
func newClusterTenant(url, secretNS, secret string, selector *metav1.LabelSelector) *iamv1alpha1.ClusterCipherscaleTenant {
	t := &iamv1alpha1.ClusterCipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Name: uniq("cluster-tenant")},
		Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
			APIKeySecretRef:   iamv1alpha1.NamespacedSecretKeyReference{Namespace: secretNS, Name: secret},
			NamespaceSelector: selector,
			TenantSettings:    iamv1alpha1.TenantSettings{URL: url},
		},
	}
	allowTenant(secretNS, secret, "ClusterCipherscaleTenant/"+t.Name)
	Expect(k8s.Create(ctx, t)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, t))).To(Succeed()) })
	return t
}

type tenantObj interface {
	client.Object
	GetTenantStatus() *iamv1alpha1.TenantStatus
}

// tenantCondition returns the condition of the tenant, read fresh from the API server.
func tenantCondition(t tenantObj, typ string) func() *metav1.Condition {
	return func() *metav1.Condition {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(t), t); err != nil {
			return nil
		}
		return meta.FindStatusCondition(t.GetTenantStatus().Conditions, typ)
	}
}

func expectTenantReady(t tenantObj) {
	GinkgoHelper()
	Eventually(tenantCondition(t, iamv1alpha1.ConditionReady), 20*time.Second, 100*time.Millisecond).
		Should(haveCondition(t, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate))
	Expect(meta.FindStatusCondition(t.GetTenantStatus().Conditions, iamv1alpha1.ConditionStalled)).To(BeNil())
}

func expectTenantStalled(t tenantObj, reason string) {
	GinkgoHelper()
	Eventually(tenantCondition(t, iamv1alpha1.ConditionStalled), 20*time.Second, 100*time.Millisecond).
		Should(haveCondition(t, metav1.ConditionTrue, reason))
	Expect(tenantCondition(t, iamv1alpha1.ConditionReady)()).To(haveCondition(t, metav1.ConditionFalse, reason))
}

// userCounts counts the simulator's users by state, as status.users should.
func userCounts(s *simulator.Server) iamv1alpha1.TenantUsers {
	var c iamv1alpha1.TenantUsers
	for _, u := range s.Users() {
		c.Total++
		switch u.Status {
		case cipherscale.StatusPending:
			c.Pending++
		case cipherscale.StatusActive:
			c.Active++
		case cipherscale.StatusInactive:
			c.Inactive++
		}
	}
	return c
}

// pausedUser is a CipherscaleUser of a tenant that makes no write: a paused object writes
// nothing to any tenant.
func pausedUser(ns, name, mail string, ref *iamv1alpha1.TenantReference) *iamv1alpha1.CipherscaleUser {
	u := newUser(ns, name, mail, func(u *iamv1alpha1.CipherscaleUser) {
		u.Annotations = map[string]string{iamv1alpha1.AnnotationPaused: "true"}
		u.Spec.TenantRef = ref
	})
	DeferCleanup(func() { deletePaused(u) })
	return u
}

// deletePaused deletes a paused object, then lifts the pause so that its finalizer (which has
// nothing to do: it never made a user) is released.
func deletePaused(obj client.Object) {
	GinkgoHelper()
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, obj))).To(Succeed())
	Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return client.IgnoreNotFound(err)
		}
		a := obj.GetAnnotations()
		delete(a, iamv1alpha1.AnnotationPaused)
		obj.SetAnnotations(a)
		return k8s.Update(ctx, obj)
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed(), "conflicts with the operator's own writes are retried")
}

var _ = Describe("Tenants", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("is Ready with a good Secret, and reports the tenant's users", func() {
		other, url := newTenantSim()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		t := newNamespacedTenant(ns, "qa", url, "key")
		expectTenantReady(t)

		Expect(t.Status.Users).To(HaveValue(Equal(userCounts(other))))
		Expect(t.Status.Users.Pending).To(BeNumerically(">=", 1))
		Expect(t.Status.Users.Active).To(BeNumerically(">=", 1))
		Expect(t.Status.Users.Inactive).To(BeNumerically(">=", 1))
		Expect(t.Status.LastSyncTime).NotTo(BeNil())
		Expect(t.Status.ObservedGeneration).To(Equal(t.Generation))
		Expect(t.Finalizers).To(ContainElement(iamv1alpha1.TenantFinalizer))
		Expect(other.Stats().Total).To(BeNumerically(">", 0), "the key was checked against the tenant's own API")
		Eventually(eventsOf(t)).Should(ContainElement(iamv1alpha1.EventTenantReady))

		By("a user declared by an object of the tenant")
		declared := other.Users()[0].Email
		pausedUser(ns, "declared", declared, &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"})
		Eventually(func() *int32 {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(t), t)
			return t.Status.Declared
		}, 20*time.Second, 100*time.Millisecond).Should(HaveValue(BeEquivalentTo(1)))
	})

	It("is Stalled with InvalidSecret until its Secret exists and holds the key", func() {
		_, url := newTenantSim()
		t := newNamespacedTenant(ns, "qa", url, "late")
		expectTenantStalled(t, iamv1alpha1.ReasonInvalidSecret)
		Expect(meta.FindStatusCondition(t.Status.Conditions, iamv1alpha1.ConditionStalled).Message).To(ContainSubstring(ns + "/late"))

		By("a Secret without the key")
		s := newSecret(ns, "late", map[string]string{"token": otherKey})
		Eventually(func() string {
			c := tenantCondition(t, iamv1alpha1.ConditionStalled)()
			if c == nil {
				return ""
			}
			return c.Message
		}, 20*time.Second, 100*time.Millisecond).Should(ContainSubstring(`no key "api-key"`))

		By("the key added to the Secret")
		update(s, func() { s.StringData = map[string]string{"api-key": otherKey} })
		expectTenantReady(t)
	})

	It("uses only a Secret that names it in cipherscale.com/allowed-tenants: nothing is sent with any other", func() {
		other, url := newTenantSim()
		// A Secret made for another purpose: no consent.
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-creds"},
			StringData: map[string]string{"api-key": otherKey}}
		Expect(k8s.Create(ctx, s)).To(Succeed())
		other.ResetStats()
		t := &iamv1alpha1.CipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qa"},
			Spec: iamv1alpha1.CipherscaleTenantSpec{
				APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: "db-creds"},
				TenantSettings:  iamv1alpha1.TenantSettings{URL: url},
			},
		}
		Expect(k8s.Create(ctx, t)).To(Succeed())
		expectTenantStalled(t, iamv1alpha1.ReasonInvalidSecret)
		msg := meta.FindStatusCondition(t.Status.Conditions, iamv1alpha1.ConditionStalled).Message
		Expect(msg).To(ContainSubstring(`cipherscale.com/allowed-tenants: "CipherscaleTenant/qa"`))
		Expect(msg).NotTo(ContainSubstring(otherKey))

		By("consent given to another tenant of the namespace only")
		update(s, func() {
			s.Annotations = map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/prod, ClusterCipherscaleTenant/qa, CipherscaleTenant/qa-2"}
		})
		Consistently(tenantCondition(t, iamv1alpha1.ConditionStalled), 3*time.Second, 200*time.Millisecond).
			Should(haveCondition(t, metav1.ConditionTrue, iamv1alpha1.ReasonInvalidSecret))
		Expect(other.Stats().Total).To(BeZero(), "a request was sent with a Secret that does not consent")

		By("the Secret naming the tenant")
		update(s, func() {
			s.Annotations = map[string]string{iamv1alpha1.AnnotationAllowedTenants: "CipherscaleTenant/prod,CipherscaleTenant/qa"}
		})
		expectTenantReady(t)
		Expect(other.Stats().Total).To(BeNumerically(">", 0))
	})

	It("leaves no metric series behind when it is deleted", func() {
		_, url := newTenantSim()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		t := newNamespacedTenant(ns, "qa", url, "key")
		expectTenantReady(t)
		label := "CipherscaleTenant/" + ns + "/qa"
		series := func() int {
			families, err := metrics.Registry.Gather()
			Expect(err).NotTo(HaveOccurred())
			n := 0
			for _, f := range families {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "tenant" && l.GetValue() == label {
							n++
						}
					}
				}
			}
			return n
		}
		Expect(series()).To(BeNumerically(">", 0), "the tenant's calls are measured")
		Expect(k8s.Delete(ctx, t)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(t), t)) }, 20*time.Second, 100*time.Millisecond).Should(BeTrue())
		Eventually(series, 10*time.Second, 100*time.Millisecond).Should(BeZero())
	})

	It("is Stalled with Unauthorized for a wrong key, and Ready once the Secret is rotated, without a restart", func() {
		other, url := newTenantSim()
		const wrong = "wrong-key-never-shown-9f8e"
		s := newSecret(ns, "key", map[string]string{"api-key": wrong})
		t := &iamv1alpha1.CipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qa"},
			Spec: iamv1alpha1.CipherscaleTenantSpec{
				APIKeySecretRef: iamv1alpha1.SecretKeyReference{Name: "key"},
				// A long resync: only a new key makes the operator call the API again.
				TenantSettings: iamv1alpha1.TenantSettings{URL: url, ResyncInterval: &metav1.Duration{Duration: time.Hour}},
			},
		}
		allowTenant(ns, "key", "CipherscaleTenant/qa")
		Expect(k8s.Create(ctx, t)).To(Succeed())
		expectTenantStalled(t, iamv1alpha1.ReasonUnauthorized)
		Eventually(eventsOf(t)).Should(ContainElement(iamv1alpha1.EventTenantUnavailable))

		By("the key appearing in no status, condition or event")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		for _, c := range t.Status.Conditions {
			Expect(c.Message).NotTo(ContainSubstring(wrong))
		}
		var evs corev1.EventList
		Expect(k8s.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
		for _, e := range evs.Items {
			Expect(e.Message).NotTo(ContainSubstring(wrong))
		}

		By("the wrong key not sent again while it stays in the Secret")
		Eventually(func() int { return statusCount(other, 401) }, 10*time.Second, 100*time.Millisecond).Should(BeNumerically(">=", 1))
		before := statusCount(other, 401)
		Consistently(func() int { return statusCount(other, 401) }, 3*resync, 200*time.Millisecond).Should(Equal(before))

		By("the Secret rotated to the right key")
		update(s, func() { s.StringData = map[string]string{"api-key": otherKey} })
		expectTenantReady(t)
		Expect(t.Status.Users).To(HaveValue(Equal(userCounts(other))))
	})

	It("is deleted only once no CipherscaleUser or membership uses it", func() {
		_, url := newTenantSim()
		newSecret(ns, "key", map[string]string{"api-key": otherKey})
		t := newNamespacedTenant(ns, "qa", url, "key")
		expectTenantReady(t)
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: "qa"}
		u := pausedUser(ns, "user", email("user"), ref)
		m := &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "members",
				Annotations: map[string]string{iamv1alpha1.AnnotationPaused: "true"}},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: seedGroup("tenant-group"), TenantRef: ref},
		}
		Expect(k8s.Create(ctx, m)).To(Succeed())
		DeferCleanup(func() { deletePaused(m) })
		Eventually(func() int32 {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(t), t)
			return t.Status.References
		}, 20*time.Second, 100*time.Millisecond).Should(BeEquivalentTo(2))

		By("deleting the tenant while both use it")
		Expect(k8s.Delete(ctx, t)).To(Succeed())
		Consistently(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(t), t) }, 2*resync, 200*time.Millisecond).
			Should(Succeed(), "the tenant waits for its users")
		Expect(t.DeletionTimestamp).NotTo(BeNil())

		By("the membership gone: one reference left")
		deletePaused(m)
		Eventually(func() int32 {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(t), t)
			return t.Status.References
		}, 20*time.Second, 100*time.Millisecond).Should(BeEquivalentTo(1))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(t), t)).To(Succeed())

		By("the user gone: the tenant goes")
		deletePaused(u)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(t), t))
		}, 20*time.Second, 100*time.Millisecond).Should(BeTrue())
	})

	It("serves a ClusterCipherscaleTenant with its Secret in any namespace", func() {
		other, url := newTenantSim()
		newSecret(ns, "cluster-key", map[string]string{"api-key": otherKey})
		t := newClusterTenant(url, ns, "cluster-key", &metav1.LabelSelector{})
		expectTenantReady(t)
		Expect(t.Status.Users).To(HaveValue(Equal(userCounts(other))))
	})
})

var _ = Describe("TenantResolver", func() {
	var (
		nsA, nsB string
		reg      *tenant.Registry
		resolver *controller.TenantResolver
		cluster  *iamv1alpha1.ClusterCipherscaleTenant
		selected *iamv1alpha1.ClusterCipherscaleTenant
	)
	BeforeEach(func() {
		nsA, nsB = newNamespace(), newNamespace()
		label := uniq("team")
		ns := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: nsA}, ns)).To(Succeed())
		ns.Labels = map[string]string{"team": label}
		Expect(k8s.Update(ctx, ns)).To(Succeed())

		_, url := newTenantSim()
		newSecret(nsA, "key", map[string]string{"api-key": otherKey})
		qa := newNamespacedTenant(nsA, "qa", url, "key")
		selected = newClusterTenant(url, nsA, "key", &metav1.LabelSelector{MatchLabels: map[string]string{"team": label}})
		cluster = newClusterTenant(url, nsA, "missing", &metav1.LabelSelector{})
		expectTenantReady(qa)
		expectTenantReady(selected)
		expectTenantStalled(cluster, iamv1alpha1.ReasonInvalidSecret)

		// The resolver's registry holds the tenants the test made Ready, as the operator's does.
		reg = tenant.NewRegistry(tenant.RegistryOptions{ReadSecret: controller.SecretReader(k8s), URLPolicy: devenv.TestURLPolicy})
		for _, k := range []tenant.Key{tenant.NamespacedKey(nsA, "qa"), tenant.ClusterKey(selected.Name)} {
			_, err := reg.Ensure(k, tenant.Config{URL: url, ResyncInterval: time.Minute,
				Secret: tenant.SecretRef{Namespace: nsA, Name: "key", Key: "api-key"}})
			Expect(err).NotTo(HaveOccurred())
		}
		resolver = &controller.TenantResolver{Kube: k8s, Tenants: reg}
	})

	userIn := func(ns string, ref *iamv1alpha1.TenantReference) client.Object {
		return &iamv1alpha1.CipherscaleUser{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "u"},
			Spec: iamv1alpha1.CipherscaleUserSpec{Email: "u@example.com", TenantRef: ref}}
	}
	nsRef := func(name string) *iamv1alpha1.TenantReference {
		return &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindCipherscaleTenant, Name: name}
	}
	clusterRef := func(name string) *iamv1alpha1.TenantReference {
		return &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: name}
	}

	It("refuses what an object may not use, naming the rule", func() {
		for _, tc := range []struct {
			what    string
			obj     client.Object
			refusal []string
		}{
			{"a CipherscaleTenant of another namespace", userIn(nsB, nsRef("qa")),
				[]string{`no CipherscaleTenant "qa" in namespace ` + nsB, "only from its own namespace"}},
			{"a ClusterCipherscaleTenant whose selector does not select the namespace", userIn(nsB, clusterRef(selected.Name)),
				[]string{selected.Name, "may not be used from namespace " + nsB, "does not select"}},
			{"a ClusterCipherscaleTenant that does not exist", userIn(nsA, clusterRef("nowhere")),
				[]string{`no ClusterCipherscaleTenant "nowhere"`}},
			{"a CipherscaleTenant that does not exist", userIn(nsA, nsRef("nowhere")),
				[]string{`no CipherscaleTenant "nowhere"`}},
			{"a tenant a person must fix (Stalled)", userIn(nsA, clusterRef(cluster.Name)),
				[]string{cluster.Name, "cannot be used until it is fixed (InvalidSecret)"}},
		} {
			t, _, refusal, err := resolver.Resolve(ctx, tc.obj)
			Expect(err).NotTo(HaveOccurred(), tc.what)
			Expect(t).To(BeNil(), tc.what)
			for _, s := range tc.refusal {
				Expect(refusal).To(ContainSubstring(s), tc.what)
			}
		}
	})

	It("returns the tenant an object may use", func() {
		for _, tc := range []struct {
			what string
			obj  client.Object
			key  tenant.Key
		}{
			{"its own namespace's CipherscaleTenant", userIn(nsA, nsRef("qa")), tenant.NamespacedKey(nsA, "qa")},
			{"a ClusterCipherscaleTenant that selects its namespace", userIn(nsA, clusterRef(selected.Name)), tenant.ClusterKey(selected.Name)},
		} {
			t, key, refusal, err := resolver.Resolve(ctx, tc.obj)
			Expect(err).NotTo(HaveOccurred(), tc.what)
			Expect(refusal).To(BeEmpty(), tc.what)
			Expect(key).To(Equal(tc.key), tc.what)
			want, _ := reg.Get(tc.key)
			Expect(t).To(BeIdenticalTo(want), tc.what)
		}

		By("no tenantRef: ClusterCipherscaleTenant/default, or a refusal that says how to make it")
		none := &controller.TenantResolver{Kube: fake.NewClientBuilder().WithScheme(devenv.Scheme()).Build(), Tenants: reg}
		t, key, refusal, err := none.Resolve(ctx, userIn(nsB, nil))
		Expect(err).NotTo(HaveOccurred())
		Expect(t).To(BeNil())
		Expect(key).To(Equal(tenant.ClusterKey("default")))
		Expect(refusal).To(And(ContainSubstring(`There is no ClusterCipherscaleTenant "default"`), ContainSubstring("create it")))
		suites := &controller.TenantResolver{Kube: k8s, Tenants: operator.Tenants}
		t, key, refusal, err = suites.Resolve(ctx, userIn(nsB, nil))
		Expect(err).NotTo(HaveOccurred())
		Expect(refusal).To(BeEmpty())
		Expect(key).To(Equal(tenant.ClusterKey("default")))
		want, _ := operator.Tenants.Get(tenant.ClusterKey("default"))
		Expect(t).To(BeIdenticalTo(want))
	})
})

// statusCount is how many API requests of the simulator were answered with this status.
func statusCount(s *simulator.Server, status int) int {
	n := 0
	for _, r := range s.Stats().Requests {
		if r.Status == status {
			n += r.Count
		}
	}
	return n
}
