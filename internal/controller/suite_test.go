package controller_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/devenv"
)

const (
	apiKey = "test-api-key-0123456789"
	// resync is short so that drift is seen within seconds.
	resync = 2 * time.Second
)

var (
	ctx    context.Context
	cancel context.CancelFunc
	cp     *devenv.ControlPlane
	k8s    client.Client
	sim    *simulator.Server
	simURL string
	// operator is the operator running in this process.
	operator *devenv.InProcess
	// byHand changes the tenant the way a person in the Cipherscale console would.
	byHand *cipherscale.Client
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	root, err := devenv.Root()
	Expect(err).NotTo(HaveOccurred())
	cp, err = devenv.StartControlPlane(root, filepath.Join(GinkgoT().TempDir(), "kubeconfig"))
	Expect(err).NotTo(HaveOccurred())
	k8s = cp.Client

	// Every namespace is trusted but those the trust specs make (trust_test.go).
	op, err := devenv.RunOperator(ctx, cp, apiKey, resync, 8, func(c *devenv.OperatorConfig) {
		next := c.DefaultTenant
		c.DefaultTenant = func(t *iamv1alpha1.ClusterCipherscaleTenant) { next(t); testTrust(t) }
	})
	Expect(err).NotTo(HaveOccurred())
	sim, simURL, operator = op.Sim, op.SimURL, op
	// ClusterCipherscaleTenant/default, the tenant of every object without tenantRef, is Ready
	// before any spec starts.
	Eventually(func() bool {
		def := &iamv1alpha1.ClusterCipherscaleTenant{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "default"}, def); err != nil {
			return false
		}
		return meta.IsStatusConditionTrue(def.Status.Conditions, iamv1alpha1.ConditionReady)
	}, 60*time.Second, 100*time.Millisecond).Should(BeTrue(), "the default tenant is not Ready")
	go func() {
		defer GinkgoRecover()
		Expect(<-op.Errors).To(Succeed())
	}()
	byHand, err = cipherscale.New(cipherscale.Config{BaseURL: simURL, Key: cipherscale.StaticKey(apiKey), QPS: 500, Burst: 100})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// ---- helpers ----

var counter int

// newNamespace creates a namespace for one test and deletes its objects afterwards, waiting
// until the operator has released them so that no test's calls leak into the next.
func newNamespace() string {
	GinkgoHelper()
	return newPrefixedNamespace("t")
}

// newPrefixedNamespace is newNamespace with a name that starts with prefix (the suite's operator
// trusts some prefixes less: see trust_test.go).
func newPrefixedNamespace(prefix string) string {
	GinkgoHelper()
	counter++
	name := fmt.Sprintf("%s%d-%d", prefix, counter, time.Now().UnixNano()%100000)
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if trust := trustOf(prefix); trust != "" {
		nsObj.Labels = map[string]string{trustLabel: trust}
	}
	Expect(k8s.Create(ctx, nsObj)).To(Succeed())
	DeferCleanup(func() {
		sim.ClearFaults()
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleGroupMembership{}, client.InNamespace(name))).To(Succeed())
		Expect(k8s.DeleteAllOf(ctx, &iamv1alpha1.CipherscaleUser{}, client.InNamespace(name))).To(Succeed())
		Eventually(func(g Gomega) {
			var us iamv1alpha1.CipherscaleUserList
			g.Expect(k8s.List(ctx, &us, client.InNamespace(name))).To(Succeed())
			g.Expect(us.Items).To(BeEmpty())
			var ms iamv1alpha1.CipherscaleGroupMembershipList
			g.Expect(k8s.List(ctx, &ms, client.InNamespace(name))).To(Succeed())
			g.Expect(ms.Items).To(BeEmpty())
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	})
	return name
}

func uniq(prefix string) string {
	counter++
	return fmt.Sprintf("%s-%d-%d", prefix, counter, time.Now().UnixNano()%1000000)
}

func email(prefix string) string { return uniq(prefix) + "@example.com" }

func seedRole(name string) string {
	r, err := sim.AddRole(simulator.RoleSeed{Name: uniq(name), Type: cipherscale.RoleTypeSupport})
	Expect(err).NotTo(HaveOccurred())
	return r.ID
}

func seedGroup(name string, roles ...string) string {
	g, err := sim.AddGroup(simulator.GroupSeed{Name: uniq(name), Roles: roles})
	Expect(err).NotTo(HaveOccurred())
	return g.ID
}

func ptr[T any](v T) *T { return &v }

func ids(list ...string) *[]string { l := append([]string{}, list...); return &l }

func newUser(ns, name, mail string, mutate ...func(*iamv1alpha1.CipherscaleUser)) *iamv1alpha1.CipherscaleUser {
	u := &iamv1alpha1.CipherscaleUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       iamv1alpha1.CipherscaleUserSpec{Email: mail},
	}
	for _, m := range mutate {
		m(u)
	}
	Expect(k8s.Create(ctx, u)).To(Succeed())
	return u
}

func newMembership(ns, name, group string, policy iamv1alpha1.MembershipPolicy, members ...iamv1alpha1.Member) *iamv1alpha1.CipherscaleGroupMembership {
	m := &iamv1alpha1.CipherscaleGroupMembership{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       iamv1alpha1.CipherscaleGroupMembershipSpec{GroupID: group, Policy: policy, Members: members},
	}
	Expect(k8s.Create(ctx, m)).To(Succeed())
	return m
}

func ref(name string) iamv1alpha1.Member {
	return iamv1alpha1.Member{UserRef: &iamv1alpha1.UserReference{Name: name}}
}

func byEmail(mail string) iamv1alpha1.Member { return iamv1alpha1.Member{Email: mail} }

// conditionOf returns the condition of the object, read fresh from the API server.
func conditionOf(obj client.Object, typ string) func() *metav1.Condition {
	return func() *metav1.Condition {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return nil
		}
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *iamv1alpha1.CipherscaleUser:
			conds = o.Status.Conditions
		case *iamv1alpha1.CipherscaleGroupMembership:
			conds = o.Status.Conditions
		}
		return meta.FindStatusCondition(conds, typ)
	}
}

// haveCondition matches a condition with the status and reason, observed for the object's
// current generation.
func haveCondition(obj client.Object, status metav1.ConditionStatus, reason string) OmegaMatcher {
	return SatisfyAll(
		Not(BeNil()),
		HaveField("Status", status),
		HaveField("Reason", reason),
		WithTransform(func(c *metav1.Condition) bool { return c.ObservedGeneration == obj.GetGeneration() }, BeTrue()),
	)
}

func expectReady(obj client.Object) {
	GinkgoHelper()
	Eventually(conditionOf(obj, iamv1alpha1.ConditionReady), 20*time.Second, 100*time.Millisecond).
		Should(haveCondition(obj, metav1.ConditionTrue, iamv1alpha1.ReasonUpToDate))
}

func expectStalled(obj client.Object, reason string) {
	GinkgoHelper()
	Eventually(conditionOf(obj, iamv1alpha1.ConditionStalled), 20*time.Second, 100*time.Millisecond).
		Should(haveCondition(obj, metav1.ConditionTrue, reason))
	Expect(conditionOf(obj, iamv1alpha1.ConditionReady)()).To(haveCondition(obj, metav1.ConditionFalse, reason))
}

// tenantUser returns the simulator's user with the email, or a zero user.
func tenantUser(mail string) cipherscale.User {
	u, _ := sim.UserByEmail(mail)
	return u
}

func usersWithEmail(mail string) int {
	n := 0
	for _, u := range sim.Users() {
		if cipherscale.NormalizeEmail(u.Email) == cipherscale.NormalizeEmail(mail) {
			n++
		}
	}
	return n
}

func sorted(list []string) []string {
	out := append([]string{}, list...)
	for i := range out {
		out[i] = normalize(out[i])
	}
	sort.Strings(out)
	return out
}

func normalize(s string) string { return cipherscale.NormalizeEmail(s) }

func roleIDs(u cipherscale.User) []string  { return sorted(u.RoleIDs()) }
func groupIDs(u cipherscale.User) []string { return sorted(u.GroupIDs()) }

// eventReasons lists the reasons of the events about the object, oldest first.
func eventReasons(obj client.Object) []string {
	return eventReasonsByUID(obj.GetNamespace(), obj.GetUID())
}

// eventReasonsByUID lists the reasons of the events about the object with the uid, oldest first.
func eventReasonsByUID(namespace string, uid types.UID) []string {
	var list eventsv1.EventList
	Expect(k8s.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool {
		return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp)
	})
	var out []string
	for _, e := range list.Items {
		if e.Regarding.UID == uid {
			out = append(out, e.Reason)
		}
	}
	return out
}

func eventsOf(obj client.Object) func() []string {
	return func() []string { return eventReasons(obj) }
}

// update reads the object, applies mutate and writes it, retrying on conflicts with the
// operator's own writes.
func update(obj client.Object, mutate func()) {
	GinkgoHelper()
	Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return k8s.Update(ctx, obj)
	}).Should(Succeed())
}
