package crd

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// "Omitted is not empty": roles and groups left out mean "not managed", [] means "none". The
// difference must survive the Go types, JSON, defaulting, updates and server-side apply.
var _ = Describe("Omitted roles and groups stay apart from empty ones", func() {
	// expectEmpty checks, through the typed client and in the stored JSON, that roles and
	// groups are present and empty.
	expectEmpty := func(ctx SpecContext, ns, name string) {
		GinkgoHelper()
		u := getUser(ctx, ns, name)
		Expect(u.Spec.Roles).NotTo(BeNil(), "roles: [] must not read back as omitted")
		Expect(*u.Spec.Roles).To(BeEmpty())
		Expect(u.Spec.Groups).NotTo(BeNil(), "groups: [] must not read back as omitted")
		Expect(*u.Spec.Groups).To(BeEmpty())

		raw := getRawSpec(ctx, kindUser, ns, name)
		Expect(raw).To(HaveKeyWithValue("roles", BeEmpty()))
		Expect(raw).To(HaveKeyWithValue("groups", BeEmpty()))
	}
	// expectOmitted checks that roles and groups are absent.
	expectOmitted := func(ctx SpecContext, ns, name string) {
		GinkgoHelper()
		u := getUser(ctx, ns, name)
		Expect(u.Spec.Roles).To(BeNil())
		Expect(u.Spec.Groups).To(BeNil())

		raw := getRawSpec(ctx, kindUser, ns, name)
		Expect(raw).NotTo(HaveKey("roles"))
		Expect(raw).NotTo(HaveKey("groups"))
	}

	Context("with the typed client", func() {
		var ns string
		BeforeEach(func(ctx SpecContext) {
			ns = newNamespace(ctx)
			Expect(k8sClient.Create(ctx, &v1alpha1.CipherscaleUser{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"},
				Spec: v1alpha1.CipherscaleUserSpec{
					Email:  "empty@example.com",
					Roles:  &[]string{},
					Groups: &[]string{},
				},
			})).To(Succeed())
			Expect(k8sClient.Create(ctx, &v1alpha1.CipherscaleUser{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "omitted"},
				Spec:       v1alpha1.CipherscaleUserSpec{Email: "omitted@example.com"},
			})).To(Succeed())
		})

		It("reads back [] as empty and omitted as nil", func(ctx SpecContext) {
			expectEmpty(ctx, ns, "empty")
			expectOmitted(ctx, ns, "omitted")
		})

		It("keeps them after an update that does not touch them", func(ctx SpecContext) {
			for _, name := range []string{"empty", "omitted"} {
				u := getUser(ctx, ns, name)
				first := "Updated"
				u.Spec.FirstName = &first
				Expect(k8sClient.Update(ctx, u)).To(Succeed())
			}
			expectEmpty(ctx, ns, "empty")
			expectOmitted(ctx, ns, "omitted")
		})

		It("keeps them after a merge patch that does not touch them", func(ctx SpecContext) {
			for _, name := range []string{"empty", "omitted"} {
				u := getUser(ctx, ns, name)
				base := u.DeepCopy()
				last := "Patched"
				u.Spec.LastName = &last
				Expect(k8sClient.Patch(ctx, u, client.MergeFrom(base))).To(Succeed())
			}
			expectEmpty(ctx, ns, "empty")
			expectOmitted(ctx, ns, "omitted")
		})

		It("turns a list into [] and back into omitted only when asked", func(ctx SpecContext) {
			u := getUser(ctx, ns, "omitted")
			u.Spec.Roles = &[]string{"11111111-1111-4111-8111-111111111111"}
			u.Spec.Groups = &[]string{"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}
			Expect(k8sClient.Update(ctx, u)).To(Succeed())

			u = getUser(ctx, ns, "omitted")
			u.Spec.Roles = &[]string{}
			u.Spec.Groups = &[]string{}
			Expect(k8sClient.Update(ctx, u)).To(Succeed())
			expectEmpty(ctx, ns, "omitted")

			u = getUser(ctx, ns, "omitted")
			u.Spec.Roles = nil
			u.Spec.Groups = nil
			Expect(k8sClient.Update(ctx, u)).To(Succeed())
			expectOmitted(ctx, ns, "omitted")
		})
	})

	Context("with server-side apply", func() {
		const manager = "crd-test"
		apply := func(ctx SpecContext, fieldManager string, u *unstructured.Unstructured) {
			GinkgoHelper()
			Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
				client.FieldOwner(fieldManager), client.ForceOwnership)).To(Succeed())
		}
		var ns string
		BeforeEach(func(ctx SpecContext) {
			ns = newNamespace(ctx)
			apply(ctx, manager, object(kindUser, ns, "empty", spec(`
email: empty@example.com
roles: []
groups: []
`)))
			apply(ctx, manager, object(kindUser, ns, "omitted", spec(`
email: omitted@example.com
`)))
		})

		It("reads back [] as empty and omitted as nil", func(ctx SpecContext) {
			expectEmpty(ctx, ns, "empty")
			expectOmitted(ctx, ns, "omitted")
		})

		It("keeps them when the same manager applies again with another change", func(ctx SpecContext) {
			apply(ctx, manager, object(kindUser, ns, "empty", spec(`
email: empty@example.com
firstName: Again
roles: []
groups: []
`)))
			apply(ctx, manager, object(kindUser, ns, "omitted", spec(`
email: omitted@example.com
firstName: Again
`)))
			expectEmpty(ctx, ns, "empty")
			expectOmitted(ctx, ns, "omitted")
		})

		It("keeps them when another manager applies fields that do not include them", func(ctx SpecContext) {
			for _, name := range []string{"empty", "omitted"} {
				apply(ctx, "someone-else", object(kindUser, ns, name, spec(`
lastName: Other
`)))
			}
			expectEmpty(ctx, ns, "empty")
			expectOmitted(ctx, ns, "omitted")
			Expect(getUser(ctx, ns, "empty").Spec.LastName).To(HaveValue(Equal("Other")))
		})

		It("turns a list into [] when the manager applies []", func(ctx SpecContext) {
			apply(ctx, manager, object(kindUser, ns, "omitted", spec(`
email: omitted@example.com
roles: [11111111-1111-4111-8111-111111111111]
groups: [aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa]
`)))
			apply(ctx, manager, object(kindUser, ns, "omitted", spec(`
email: omitted@example.com
roles: []
groups: []
`)))
			expectEmpty(ctx, ns, "omitted")
		})
	})
})
