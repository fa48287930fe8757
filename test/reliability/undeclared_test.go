package reliability

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

// scrapeGauge reads one series of the manager's metrics endpoint (plain HTTP), -1 when absent.
func scrapeGauge(port int, series string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

var _ = Describe("undeclared users", func() {
	It("reports 380 of 500 users on a ClusterCipherscaleTenant without a write, then deactivates exactly the undeclared within the budget and an allow-removals", func() {
		start := time.Now()
		ns := newNamespace("undeclared")
		defaultSim, tenantSim := startSim(), startSim()

		By("a tenant of 500 users: the owner, 120 declared (100 objects, 20 email members), 379 others")
		group := tenantSim.group("staff")
		owner := "owner@rel.example"
		_, err := tenantSim.AddUser(simulator.UserSeed{Email: owner, IsOwner: true, Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		emails := make([]string, 0, 499)
		for i := 1; i <= 499; i++ {
			e := fmt.Sprintf("r%03d@rel.example", i)
			emails = append(emails, e)
			seed := simulator.UserSeed{Email: e, Status: cipherscale.StatusActive}
			if i > 100 && i <= 120 {
				seed.Groups = []string{group}
			}
			_, err := tenantSim.AddUser(seed)
			Expect(err).NotTo(HaveOccurred())
		}
		name := fmt.Sprintf("rel-%d", next())
		ref := &iamv1alpha1.TenantReference{Kind: iamv1alpha1.KindClusterCipherscaleTenant, Name: name}
		paused := func(i int) client.Object {
			return &iamv1alpha1.CipherscaleUser{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("r%03d", i),
					Annotations: map[string]string{iamv1alpha1.AnnotationPaused: "true"}},
				Spec: iamv1alpha1.CipherscaleUserSpec{Email: emails[i-1], TenantRef: ref},
			}
		}
		var objs []client.Object
		for i := 1; i <= 100; i++ {
			objs = append(objs, paused(i))
		}
		var members []iamv1alpha1.Member
		for i := 101; i <= 120; i++ {
			members = append(members, iamv1alpha1.Member{Email: emails[i-1]})
		}
		objs = append(objs, &iamv1alpha1.CipherscaleGroupMembership{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "staff"},
			Spec: iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group,
				Policy: iamv1alpha1.MembershipPolicyAdditive, Members: members, TenantRef: ref},
		})
		createAll(objs)
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "key",
			Annotations: map[string]string{iamv1alpha1.AnnotationAllowedTenants: "ClusterCipherscaleTenant/" + name}},
			StringData: map[string]string{"api-key": apiKey}})).To(Succeed())

		metricsPort, err := devenv.FreePort()
		Expect(err).NotTo(HaveOccurred())
		// The manager watches every namespace.
		startManager(managerConfig{name: "manager", apiURL: defaultSim.URL, args: []string{
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--metrics-secure=false",
		}})
		tenantSim.ResetStats()

		perHour := int32(100)
		t := &iamv1alpha1.ClusterCipherscaleTenant{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
				APIKeySecretRef:   iamv1alpha1.NamespacedSecretKeyReference{Namespace: ns, Name: "key"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
				// The membership's 20 email members have no CipherscaleUser: it declares them only
				// from a namespace that may adopt (a refused membership declares nobody, and they
				// would be removed with the undeclared).
				Adoption: &iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
				TenantSettings: iamv1alpha1.TenantSettings{
					URL: tenantSim.URL,
					// The resync the manager's --resync-interval gave every tenant before it became a tenant field.
					ResyncInterval: &metav1.Duration{Duration: resync},
					// And the rate its --qps and --burst gave every tenant (startManager's default tenant's).
					RequestsPerSecond: ptr(int32(200)), Burst: ptr(int32(100)),
					UndeclaredUsers: &iamv1alpha1.UndeclaredUsersSpec{
						Policy: iamv1alpha1.UndeclaredUsersReport, Exclude: []string{"r49*@rel.example"},
						GracePeriod: &metav1.Duration{Duration: 2 * time.Second},
					},
					RemovalBudget: &iamv1alpha1.RemovalBudgetSpec{PerHour: &perHour},
				},
			},
		}
		Expect(k8s.Create(ctx, t)).To(Succeed())
		status := func() iamv1alpha1.TenantStatus {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(t), t)).To(Succeed())
			return t.Status
		}

		undeclared := append([]string{owner}, emails[120:]...)
		sort.Strings(undeclared)
		Expect(undeclared).To(HaveLen(380))
		Eventually(status, 30*time.Second, 100*time.Millisecond).Should(And(
			HaveField("Declared", HaveValue(BeEquivalentTo(120))),
			HaveField("Undeclared", HaveValue(Equal(iamv1alpha1.UndeclaredStatus{Count: 380, Emails: undeclared[:20]}))),
		))
		series := fmt.Sprintf(`cipherscale_undeclared_users{tenant="ClusterCipherscaleTenant/%s"}`, name)
		Eventually(func() float64 { return scrapeGauge(metricsPort, series) }, 10*time.Second, 100*time.Millisecond).Should(Equal(380.0))
		Expect(writesIn(tenantSim.Stats())).To(BeZero())
		figure("undeclared", "Report of 500 users", fmt.Sprintf("380 undeclared, 0 writes, reported %s after the spec began (seeding and manager start included); %s",
			time.Since(start).Round(100*time.Millisecond), statsSummary(tenantSim.Stats())))

		By("Deactivate with a 2s grace period; r200 is declared before it ends")
		deactivateAt := time.Now()
		Eventually(func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(t), t); err != nil {
				return err
			}
			t.Spec.UndeclaredUsers.Policy = iamv1alpha1.UndeclaredUsersDeactivate
			return k8s.Update(ctx, t)
		}).Should(Succeed())
		Expect(k8s.Create(ctx, paused(200))).To(Succeed())

		inactive := func() []string {
			var out []string
			for _, u := range tenantSim.Users() {
				if u.Status == cipherscale.StatusInactive {
					out = append(out, cipherscale.NormalizeEmail(u.Email))
				}
			}
			sort.Strings(out)
			return out
		}
		Eventually(func() *metav1.Condition {
			return meta.FindStatusCondition(status().Conditions, iamv1alpha1.ConditionStalled)
		}, 30*time.Second, 100*time.Millisecond).Should(And(Not(BeNil()),
			HaveField("Reason", "RemovalBudgetExceeded"), HaveField("Message", HavePrefix("268 removals wait"))))
		firstWave := time.Since(deactivateAt)
		Expect(inactive()).To(HaveLen(100), "exactly the budget")
		Expect(firstWave).To(BeNumerically(">=", 2*time.Second), "nobody before the grace period")

		By("a person allows the 268 that wait")
		Eventually(func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(t), t); err != nil {
				return err
			}
			t.Annotations = map[string]string{"cipherscale.com/allow-removals": "268"}
			return k8s.Update(ctx, t)
		}).Should(Succeed())
		var want []string
		for i := 121; i <= 489; i++ {
			if i != 200 {
				want = append(want, emails[i-1])
			}
		}
		Eventually(inactive, 30*time.Second, 100*time.Millisecond).Should(Equal(want))
		Eventually(func() *metav1.Condition {
			return meta.FindStatusCondition(status().Conditions, iamv1alpha1.ConditionStalled)
		}, 30*time.Second, 100*time.Millisecond).Should(BeNil())
		Expect(t.Status.RemovalBudget).To(HaveValue(HaveField("AllowRemovalsUsed", "268")))
		st := tenantSim.Stats()
		Expect(st.Count(cipherscale.RouteDeactivateUser)).To(Equal(368), "each once; never the owner, the excluded or r200")
		Expect(writesIn(st)).To(Equal(368))
		for _, e := range []string{owner, emails[199], emails[489], emails[498], emails[0], emails[110]} {
			u, ok := tenantSim.UserByEmail(e)
			Expect(ok).To(BeTrue())
			Expect(u.Status).To(Equal(cipherscale.StatusActive), e)
		}
		figure("undeclared", "Deactivate 368 within a budget of 100 and allow-removals 268",
			fmt.Sprintf("first 100 after %s, all in %s; %s", firstWave.Round(100*time.Millisecond),
				time.Since(deactivateAt).Round(100*time.Millisecond), statsSummary(st)))
	})
})
