package crd

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// validUser and validMembership are valid specs the entries below break one field of.
func validUser() map[string]any {
	return spec(`
email: jane@example.com
roles: [11111111-1111-4111-8111-111111111111]
groups: [aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa]
`)
}

func validMembership() map[string]any {
	return spec(`
groupId: aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
members:
  - userRef: {name: jane}
  - email: contractor@example.com
`)
}

// expectInvalid checks that err is the API server's Invalid (422) and that its message names
// every one of fields.
func expectInvalid(err error, fields ...string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted an invalid object")
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %T: %v", err, err)
	GinkgoWriter.Printf("Refused: %v\n", err)
	for _, f := range fields {
		Expect(err.Error()).To(ContainSubstring(f))
	}
}

var _ = Describe("Invalid manifests", func() {
	var ns string
	BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx) })

	It("starts from valid specs", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, object(kindUser, ns, "valid", validUser()))).To(Succeed())
		Expect(k8sClient.Create(ctx, object(kindMembership, ns, "valid", validMembership()))).To(Succeed())
	})

	DescribeTable("are refused on create, naming the field",
		func(ctx SpecContext, kind string, s map[string]any, fields ...string) {
			err := k8sClient.Create(ctx, object(kind, ns, "invalid", s))
			expectInvalid(err, fields...)
		},

		// CipherscaleUser: email.
		Entry("user without spec", kindUser, nil, "spec"),
		Entry("user without email", kindUser, spec(`firstName: Jane`), "spec.email"),
		Entry("empty email", kindUser, with(validUser(), "email", ""), "spec.email"),
		Entry("email without @", kindUser, with(validUser(), "email", "jane.example.com"), "spec.email"),
		Entry("email without a dot in the domain", kindUser, with(validUser(), "email", "jane@example"), "spec.email"),
		Entry("email with two @", kindUser, with(validUser(), "email", "jane@@example.com"), "spec.email"),
		Entry("email without local part", kindUser, with(validUser(), "email", "@example.com"), "spec.email"),
		Entry("email with a space", kindUser, with(validUser(), "email", "jane smith@example.com"), "spec.email"),
		Entry("email ending in a dot", kindUser, with(validUser(), "email", "jane@example."), "spec.email"),
		Entry("email over 254 characters", kindUser,
			with(validUser(), "email", strings.Repeat("a", 243)+"@example.com"), "spec.email"),

		// CipherscaleUser: profile.
		Entry("firstName over 128 characters", kindUser,
			with(validUser(), "firstName", strings.Repeat("x", 129)), "spec.firstName"),
		Entry("active not a boolean", kindUser, with(validUser(), "active", "yes"), "spec.active"),

		// CipherscaleUser: roles and groups.
		Entry("non-UUID role id", kindUser, with(validUser(), "roles", []any{"admin"}), "spec.roles[0]"),
		Entry("second role id not a UUID", kindUser,
			with(validUser(), "roles", []any{"11111111-1111-4111-8111-111111111111", "11111111-1111-4111-8111"}),
			"spec.roles[1]"),
		Entry("role id with a trailing character", kindUser,
			with(validUser(), "roles", []any{"11111111-1111-4111-8111-111111111111x"}), "spec.roles[0]"),
		Entry("non-UUID group id", kindUser, with(validUser(), "groups", []any{"engineering"}), "spec.groups[0]"),
		Entry("too many roles", kindUser, with(validUser(), "roles", uuids(65)), "spec.roles"),
		Entry("too many groups", kindUser, with(validUser(), "groups", uuids(129)), "spec.groups"),
		Entry("duplicate roles", kindUser,
			with(validUser(), "roles", []any{"11111111-1111-4111-8111-111111111111", "11111111-1111-4111-8111-111111111111"}),
			"spec.roles"),
		Entry("duplicate groups", kindUser,
			with(validUser(), "groups", []any{"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}),
			"spec.groups"),
		Entry("roles not a list", kindUser, with(validUser(), "roles", "11111111-1111-4111-8111-111111111111"), "spec.roles"),

		// CipherscaleUser: policies.
		Entry("bad deletionPolicy", kindUser, with(validUser(), "deletionPolicy", "Destroy"), "spec.deletionPolicy"),
		Entry("deletionPolicy in the wrong case", kindUser, with(validUser(), "deletionPolicy", "delete"), "spec.deletionPolicy"),
		Entry("bad adoptionPolicy", kindUser, with(validUser(), "adoptionPolicy", "Always"), "spec.adoptionPolicy"),

		// CipherscaleUser: invitation.
		Entry("maxResends above 20", kindUser,
			with(validUser(), "invitation", map[string]any{"resendAfter": "72h", "maxResends": int64(21)}),
			"spec.invitation.maxResends"),
		Entry("negative maxResends", kindUser,
			with(validUser(), "invitation", map[string]any{"resendAfter": "72h", "maxResends": int64(-1)}),
			"spec.invitation.maxResends"),
		Entry("resendAfter below 1m", kindUser,
			with(validUser(), "invitation", map[string]any{"resendAfter": "30s"}),
			"spec.invitation.resendAfter"),
		Entry("resendAfter zero", kindUser,
			with(validUser(), "invitation", map[string]any{"resendAfter": "0s"}),
			"spec.invitation.resendAfter"),
		Entry("resendAfter not a duration", kindUser,
			with(validUser(), "invitation", map[string]any{"resendAfter": "soon"}),
			"spec.invitation.resendAfter"),
		Entry("invitation without resendAfter", kindUser,
			with(validUser(), "invitation", map[string]any{"maxResends": int64(2)}),
			"spec.invitation.resendAfter"),

		// CipherscaleGroupMembership: group and policies.
		Entry("membership without groupId", kindMembership, spec(`policy: Additive`), "spec.groupId"),
		Entry("non-UUID groupId", kindMembership, with(validMembership(), "groupId", "engineering"), "spec.groupId"),
		Entry("empty groupId", kindMembership, with(validMembership(), "groupId", ""), "spec.groupId"),
		Entry("bad policy", kindMembership, with(validMembership(), "policy", "Exclusive"), "spec.policy"),
		Entry("bad membership deletionPolicy", kindMembership,
			with(validMembership(), "deletionPolicy", "Deactivate"), "spec.deletionPolicy"),

		// CipherscaleGroupMembership: members.
		Entry("member with both userRef and email", kindMembership,
			with(validMembership(), "members", []any{map[string]any{
				"userRef": map[string]any{"name": "jane"}, "email": "jane@example.com"}}),
			"spec.members[0]"),
		Entry("member with neither userRef nor email", kindMembership,
			with(validMembership(), "members", []any{map[string]any{}}), "spec.members[0]"),
		Entry("second member with neither", kindMembership,
			with(validMembership(), "members", []any{map[string]any{"email": "a@example.com"}, map[string]any{}}),
			"spec.members[1]"),
		Entry("member with a bad email", kindMembership,
			with(validMembership(), "members", []any{map[string]any{"email": "not-an-email"}}),
			"spec.members[0].email"),
		Entry("member email over 254 characters", kindMembership,
			with(validMembership(), "members", []any{map[string]any{"email": strings.Repeat("a", 243) + "@example.com"}}),
			"spec.members[0].email"),
		Entry("userRef with an empty name", kindMembership,
			with(validMembership(), "members", []any{map[string]any{"userRef": map[string]any{"name": ""}}}),
			"spec.members[0].userRef.name"),
		Entry("userRef without a name", kindMembership,
			with(validMembership(), "members", []any{map[string]any{"userRef": map[string]any{}}}),
			"spec.members[0].userRef.name"),
		Entry("too many members", kindMembership,
			with(validMembership(), "members", emailMembers(1001)), "spec.members"),
	)

	DescribeTable("are refused on update, naming the field",
		func(ctx SpecContext, kind string, s map[string]any, field string, value any, fields ...string) {
			obj := object(kind, ns, "immutable", s)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())

			live := object(kind, ns, "immutable", nil)
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(live), live)).To(Succeed())
			Expect(unstructured.SetNestedField(live.Object, value, "spec", field)).To(Succeed())
			expectInvalid(k8sClient.Update(ctx, live), fields...)
		},
		Entry("changing spec.email", kindUser, validUser(), "email", "john@example.com",
			"spec.email", "immutable"),
		Entry("changing spec.groupId", kindMembership, validMembership(), "groupId",
			"bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "spec.groupId", "immutable"),
		Entry("an invalid role on an existing user", kindUser, validUser(), "roles", []any{"admin"},
			"spec.roles[0]"),
	)

	It("accepts updates that keep spec.email and spec.groupId", func(ctx SpecContext) {
		user := object(kindUser, ns, "mutable", validUser())
		Expect(k8sClient.Create(ctx, user)).To(Succeed())
		Expect(unstructured.SetNestedField(user.Object, "Jane", "spec", "firstName")).To(Succeed())
		Expect(unstructured.SetNestedSlice(user.Object, []any{}, "spec", "roles")).To(Succeed())
		Expect(k8sClient.Update(ctx, user)).To(Succeed())

		m := object(kindMembership, ns, "mutable", validMembership())
		Expect(k8sClient.Create(ctx, m)).To(Succeed())
		Expect(unstructured.SetNestedField(m.Object, "Authoritative", "spec", "policy")).To(Succeed())
		Expect(k8sClient.Update(ctx, m)).To(Succeed())
	})
})
