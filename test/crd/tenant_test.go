package crd

import (
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

const (
	kindClusterTenant = "ClusterCipherscaleTenant"
	kindTenant        = "CipherscaleTenant"
)

func validClusterTenant() map[string]any {
	return spec(`
url: https://public-api.cipherscale.com/prod
apiKeySecretRef: {namespace: cipherscale-system, name: cipherscale-prod, key: api-key}
namespaceSelector: {matchLabels: {cipherscale.com/tenant: prod}}
requestsPerSecond: 10
burst: 20
resyncInterval: 10m
undeclaredUsers: {policy: Report, exclude: [breakglass@company.com, "*@partner.com"], gracePeriod: 24h}
removalBudget: {perHour: 100}
adoption: {namespaceSelector: {matchLabels: {team: platform}}}
privileged: {namespaceSelector: {matchLabels: {team: platform}}, roles: [11111111-1111-4111-8111-111111111111]}
`)
}

func validTenant() map[string]any {
	return spec(`
apiKeySecretRef: {name: cipherscale-qa}
`)
}

// withNested returns a deep copy of m with the value at path (below spec) set to v.
func withNested(m map[string]any, v any, path ...string) map[string]any {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": m}}
	c := u.DeepCopy()
	Expect(unstructured.SetNestedField(c.Object, v, append([]string{"spec"}, path...)...)).To(Succeed())
	return c.Object["spec"].(map[string]any)
}

// without returns a copy of m without key.
func without(m map[string]any, key string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

var _ = Describe("Tenant CRDs", func() {
	It("install cluster-scoped and namespaced, with their printer columns", func(ctx SpecContext) {
		for _, tc := range []struct {
			name  string
			scope apiextensionsv1.ResourceScope
		}{
			{"clustercipherscaletenants.iam.cipherscale.com", apiextensionsv1.ClusterScoped},
			{"cipherscaletenants.iam.cipherscale.com", apiextensionsv1.NamespaceScoped},
		} {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: tc.name}, crd)).To(Succeed())
			Expect(crd.Spec.Scope).To(Equal(tc.scope), tc.name)
			Expect(crd.Spec.Names.Categories).To(ContainElement("cipherscale"))
			v := crd.Spec.Versions[0]
			Expect(v.Subresources.Status).NotTo(BeNil())
			var got []string
			for _, c := range v.AdditionalPrinterColumns {
				if c.Priority == 0 {
					got = append(got, strings.ToUpper(c.Name))
				}
			}
			// The removal budget is in the default view: kubectl get ccst shows it (issue 20).
			Expect(got).To(Equal([]string{"URL", "READY", "USERS", "DECLARED", "UNDECLARED", "REMOVALS/H", "SPENT", "WAITING", "AGE"}), tc.name)
		}
	})

	It("accept valid tenants and default what they omit", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		Expect(k8sClient.Create(ctx, object(kindClusterTenant, "", "valid-"+ns, validClusterTenant()))).To(Succeed())
		Expect(k8sClient.Create(ctx, object(kindClusterTenant, "", "every-ns-"+ns, spec(`
apiKeySecretRef: {namespace: cipherscale-system, name: s}
namespaceSelector: {}
url: http://127.0.0.1:8080/api
`)))).To(Succeed())
		Expect(k8sClient.Create(ctx, object(kindTenant, ns, "valid", validTenant()))).To(Succeed())

		t := &v1alpha1.CipherscaleTenant{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "valid"}, t)).To(Succeed())
		Expect(t.Spec.URL).To(Equal("https://public-api.cipherscale.com/qa"), "the documented base URL")
		Expect(t.Spec.APIKeySecretRef.Key).To(Equal("api-key"))
		By("the settings that were manager flags have the flags' defaults")
		every := &v1alpha1.ClusterCipherscaleTenant{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "every-ns-" + ns}, every)).To(Succeed())
		Expect(every.Spec.RequestsPerSecond).To(HaveValue(BeEquivalentTo(10)), "--qps's default")
		Expect(every.Spec.Burst).To(HaveValue(BeEquivalentTo(20)), "--burst's default")
		Expect(every.Spec.RemovalBudget).NotTo(BeNil())
		Expect(every.Spec.RemovalBudget.PerHour).To(HaveValue(BeEquivalentTo(25)), "--removal-budget's default")
		Expect(every.Spec.DefaultDeletionPolicy).To(Equal(v1alpha1.DeletionPolicyDelete), "--default-deletion-policy's default")

		c := &v1alpha1.ClusterCipherscaleTenant{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "valid-" + ns}, c)).To(Succeed())
		Expect(c.Spec.UndeclaredUsers.GracePeriod.Duration.String()).To(Equal("24h0m0s"))
		Expect(c.Spec.NamespaceSelector.MatchLabels).To(HaveKeyWithValue("cipherscale.com/tenant", "prod"))
	})

	DescribeTable("refuse invalid tenants, naming the field",
		func(ctx SpecContext, kind string, s map[string]any, fields ...string) {
			// An invalid object is never stored, so every entry can use the same name.
			ns := ""
			if kind == kindTenant {
				ns = newNamespace(ctx)
			}
			expectInvalid(k8sClient.Create(ctx, object(kind, ns, "invalid", s)), fields...)
		},
		Entry("cluster tenant without namespaceSelector", kindClusterTenant,
			without(validClusterTenant(), "namespaceSelector"), "spec.namespaceSelector"),
		Entry("cluster tenant without apiKeySecretRef", kindClusterTenant,
			without(validClusterTenant(), "apiKeySecretRef"), "spec.apiKeySecretRef"),
		Entry("cluster tenant Secret without namespace", kindClusterTenant,
			withNested(validClusterTenant(), map[string]any{"name": "s"}, "apiKeySecretRef"), "spec.apiKeySecretRef.namespace"),
		Entry("Secret name not a DNS name", kindClusterTenant,
			withNested(validClusterTenant(), "Bad_Name", "apiKeySecretRef", "name"), "spec.apiKeySecretRef.name"),
		Entry("Secret key with a slash", kindTenant,
			withNested(validTenant(), "a/b", "apiKeySecretRef", "key"), "spec.apiKeySecretRef.key"),
		Entry("url not a URL", kindTenant, with(validTenant(), "url", "not a url"), "spec.url"),
		Entry("url over plain http to a remote host", kindTenant,
			with(validTenant(), "url", "http://public-api.cipherscale.com/qa"), "spec.url"),
		Entry("url with another scheme", kindTenant, with(validTenant(), "url", "ftp://example.com/"), "spec.url"),
		Entry("requestsPerSecond zero", kindTenant, with(validTenant(), "requestsPerSecond", int64(0)), "spec.requestsPerSecond"),
		Entry("requestsPerSecond above 1000", kindTenant, with(validTenant(), "requestsPerSecond", int64(1001)), "spec.requestsPerSecond"),
		Entry("burst negative", kindTenant, with(validTenant(), "burst", int64(-1)), "spec.burst"),
		Entry("resyncInterval below 1s", kindTenant, with(validTenant(), "resyncInterval", "500ms"), "spec.resyncInterval"),
		Entry("resyncInterval above 24h", kindTenant, with(validTenant(), "resyncInterval", "25h"), "spec.resyncInterval"),
		Entry("resyncInterval not a duration", kindTenant, with(validTenant(), "resyncInterval", "often"), "spec.resyncInterval"),
		Entry("unknown undeclaredUsers policy", kindTenant,
			with(validTenant(), "undeclaredUsers", map[string]any{"policy": "Purge"}), "spec.undeclaredUsers.policy"),
		Entry("exclude entry not an address", kindTenant,
			with(validTenant(), "undeclaredUsers", map[string]any{"exclude": []any{"partner.com"}}), "spec.undeclaredUsers.exclude[0]"),
		Entry("exclude entry repeated", kindTenant,
			with(validTenant(), "undeclaredUsers", map[string]any{"exclude": []any{"a@b.com", "a@b.com"}}), "spec.undeclaredUsers.exclude[1]"),
		Entry("gracePeriod not a duration", kindTenant,
			with(validTenant(), "undeclaredUsers", map[string]any{"gracePeriod": "1 day"}), "spec.undeclaredUsers.gracePeriod"),
		Entry("negative removal budget", kindTenant,
			with(validTenant(), "removalBudget", map[string]any{"perHour": int64(-1)}), "spec.removalBudget.perHour"),
		Entry("privileged role not a UUID", kindTenant,
			with(validTenant(), "privileged", map[string]any{"roles": []any{"Admin"}}), "spec.privileged.roles[0]"),
	)

	// kubectl validates strictly by default: a field a kind does not have is refused by name.
	DescribeTable("refuse, under strict validation, the fields of the other kind",
		func(ctx SpecContext, s map[string]any, field string) {
			err := k8sClient.Create(ctx, object(kindTenant, newNamespace(ctx), "strict", s), client.FieldValidation("Strict"))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(field))
		},
		Entry("a namespaced tenant's Secret in another namespace",
			withNested(validTenant(), "other", "apiKeySecretRef", "namespace"), "spec.apiKeySecretRef.namespace"),
		Entry("a namespaceSelector on a namespaced tenant",
			with(validTenant(), "namespaceSelector", map[string]any{}), "spec.namespaceSelector"),
		Entry("adoption on a namespaced tenant",
			with(validTenant(), "adoption", map[string]any{"namespaceSelector": map[string]any{}}), "spec.adoption"),
	)
})

var _ = Describe("tenantRef", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	refTo := func(kind, name string) map[string]any { return map[string]any{"kind": kind, "name": name} }

	It("is accepted on both kinds, and optional", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, object(kindUser, ns, "with-ref",
			with(validUser(), "tenantRef", refTo(kindTenant, "qa"))))).To(Succeed())
		Expect(k8sClient.Create(ctx, object(kindMembership, ns, "with-ref",
			with(validMembership(), "tenantRef", refTo(kindClusterTenant, "prod"))))).To(Succeed())
		Expect(k8sClient.Create(ctx, object(kindUser, ns, "without-ref", validUser()))).To(Succeed())
		Expect(getUser(ctx, ns, "without-ref").Spec.TenantRef).To(BeNil(), "omitted: the default tenant")
	})

	DescribeTable("is refused when invalid",
		func(ctx SpecContext, kind string, s map[string]any, fields ...string) {
			expectInvalid(k8sClient.Create(ctx, object(kind, ns, "bad-ref", s)), fields...)
		},
		Entry("unknown kind", kindUser, with(validUser(), "tenantRef", refTo("Tenant", "qa")), "spec.tenantRef.kind"),
		Entry("empty name", kindUser, with(validUser(), "tenantRef", refTo(kindTenant, "")), "spec.tenantRef.name"),
		Entry("name not a DNS name", kindMembership,
			with(validMembership(), "tenantRef", refTo(kindTenant, "QA tenant")), "spec.tenantRef.name"),
		Entry("no name", kindMembership,
			with(validMembership(), "tenantRef", map[string]any{"kind": kindTenant}), "spec.tenantRef.name"),
	)

	DescribeTable("is immutable: changed, added or removed",
		func(ctx SpecContext, kind string, s map[string]any, newRef any) {
			obj := object(kind, ns, "immutable", s)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			live := object(kind, ns, "immutable", nil)
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(live), live)).To(Succeed())
			if newRef == nil {
				unstructured.RemoveNestedField(live.Object, "spec", "tenantRef")
			} else {
				Expect(unstructured.SetNestedField(live.Object, newRef, "spec", "tenantRef")).To(Succeed())
			}
			expectInvalid(k8sClient.Update(ctx, live), "spec.tenantRef", "immutable")
		},
		Entry("user: another name", kindUser, with(validUser(), "tenantRef", refTo(kindTenant, "qa")), refTo(kindTenant, "prod")),
		Entry("user: another kind", kindUser, with(validUser(), "tenantRef", refTo(kindTenant, "qa")), refTo(kindClusterTenant, "qa")),
		Entry("user: added", kindUser, validUser(), refTo(kindTenant, "qa")),
		Entry("user: removed", kindUser, with(validUser(), "tenantRef", refTo(kindTenant, "qa")), nil),
		Entry("membership: another name", kindMembership,
			with(validMembership(), "tenantRef", refTo(kindClusterTenant, "prod")), refTo(kindClusterTenant, "qa")),
		Entry("membership: added", kindMembership, validMembership(), refTo(kindClusterTenant, "prod")),
		Entry("membership: removed", kindMembership,
			with(validMembership(), "tenantRef", refTo(kindClusterTenant, "prod")), nil),
	)

	It("allows other changes to an object with a tenantRef", func(ctx SpecContext) {
		obj := object(kindUser, ns, "mutable", with(validUser(), "tenantRef", refTo(kindTenant, "qa")))
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		Expect(unstructured.SetNestedField(obj.Object, "Jane", "spec", "firstName")).To(Succeed())
		Expect(k8sClient.Update(ctx, obj)).To(Succeed())
	})
})

var _ = Describe("Control and bidirectional characters", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	DescribeTable("are refused in emails and names",
		func(ctx SpecContext, kind string, s map[string]any, field string) {
			expectInvalid(k8sClient.Create(ctx, object(kind, ns, "hostile", s)), field)
		},
		Entry("right-to-left override in an email", kindUser, with(validUser(), "email", "jane\u202e@example.com"), "spec.email"),
		Entry("left-to-right isolate in an email", kindUser, with(validUser(), "email", "ja\u2066ne@example.com"), "spec.email"),
		Entry("right-to-left mark in an email", kindUser, with(validUser(), "email", "jane@exa\u200fmple.com"), "spec.email"),
		Entry("zero-width space in an email", kindUser, with(validUser(), "email", "jane\u200b@example.com"), "spec.email"),
		Entry("NUL in an email", kindUser, with(validUser(), "email", "jane\x00@example.com"), "spec.email"),
		Entry("escape in an email", kindUser, with(validUser(), "email", "jane\x1b[31m@example.com"), "spec.email"),
		Entry("right-to-left override in firstName", kindUser, with(validUser(), "firstName", "Jane\u202eevil"), "spec.firstName"),
		Entry("pop directional isolate in lastName", kindUser, with(validUser(), "lastName", "Smith\u2069"), "spec.lastName"),
		Entry("Arabic letter mark in lastName", kindUser, with(validUser(), "lastName", "Smith\u061c"), "spec.lastName"),
		Entry("newline in firstName", kindUser, with(validUser(), "firstName", "Jane\nAdmin"), "spec.firstName"),
		Entry("C1 control in lastName", kindUser, with(validUser(), "lastName", "Smith\u0085"), "spec.lastName"),
		Entry("right-to-left embedding in a member email", kindMembership,
			with(validMembership(), "members", []any{map[string]any{"email": "a\u202b@example.com"}}), "spec.members[0].email"),
	)

	It("accepts names in any script, with their joiners", func(ctx SpecContext) {
		s := with(with(validUser(), "firstName", "\u0645\u0631\u064a\u0645"), "lastName", "\u0936\u094d\u200d\u0930\u0940 Zo\u00eb")
		Expect(k8sClient.Create(ctx, object(kindUser, ns, "scripts", s))).To(Succeed())
	})
})

var _ = Describe("The tenant samples in config/samples", func() {
	It("are accepted strictly, in a namespace of their own", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		objs := readObjects(filepath.Join("..", "..", "config", "samples", "iam_v1alpha1_tenants.yaml"))
		kinds := map[string]int{}
		for _, o := range objs {
			kinds[o.GetKind()]++
			if o.GetNamespace() != "" {
				o.SetNamespace(ns)
			} else {
				o.SetName(o.GetName() + "-" + ns)
			}
			Expect(k8sClient.Create(ctx, o, client.FieldValidation("Strict"))).To(Succeed(), "sample %s %s", o.GetKind(), o.GetName())
		}
		Expect(kinds).To(Equal(map[string]int{kindClusterTenant: 1, kindTenant: 1, kindUser: 1}))
	})
})
