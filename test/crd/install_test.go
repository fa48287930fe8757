package crd

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

var _ = Describe("The CRDs", func() {
	DescribeTable("install, become Established and carry their short name and printer columns",
		func(ctx SpecContext, name, shortName string, columns []string) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd)).To(Succeed())

			established := false
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					established = true
				}
			}
			Expect(established).To(BeTrue(), "conditions: %+v", crd.Status.Conditions)

			Expect(crd.Spec.Scope).To(Equal(apiextensionsv1.NamespaceScoped))
			Expect(crd.Spec.Names.ShortNames).To(ContainElement(shortName))
			Expect(crd.Spec.Names.Categories).To(ContainElement("cipherscale"))
			Expect(crd.Spec.Versions).To(HaveLen(1))
			v := crd.Spec.Versions[0]
			Expect(v.Name).To(Equal(v1alpha1.GroupVersion.Version))
			Expect(v.Served).To(BeTrue())
			Expect(v.Storage).To(BeTrue())
			Expect(v.Subresources).NotTo(BeNil())
			Expect(v.Subresources.Status).NotTo(BeNil())

			var got []string
			for _, c := range v.AdditionalPrinterColumns {
				if c.Priority == 0 {
					got = append(got, c.Name)
				}
			}
			Expect(got).To(Equal(columns))
		},
		Entry("CipherscaleUser", "cipherscaleusers.iam.cipherscale.com", "csu",
			[]string{"Email", "State", "Ready", "Age"}),
		Entry("CipherscaleGroupMembership", "cipherscalegroupmemberships.iam.cipherscale.com", "csgm",
			[]string{"Group", "Members", "Ready", "Age"}),
	)
})

var _ = Describe("The samples in config/samples", func() {
	samples := filepath.Join("..", "..", "config", "samples")

	It("are accepted and defaulted (CipherscaleUser)", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		objs := readObjects(filepath.Join(samples, "iam_v1alpha1_cipherscaleuser.yaml"))
		Expect(len(objs)).To(BeNumerically(">=", 4))
		for _, o := range objs {
			Expect(o.GetKind()).To(Equal(kindUser))
			o.SetNamespace(ns)
			Expect(k8sClient.Create(ctx, o)).To(Succeed(), "sample %s", o.GetName())

			u := getUser(ctx, ns, o.GetName())
			Expect(u.Spec.Active).To(HaveValue(BeTrue()), "sample %s: active defaults to true", u.Name)
			Expect(u.Spec.AdoptionPolicy).To(Equal(v1alpha1.AdoptionPolicyIfExists), "sample %s", u.Name)
			if u.Spec.Invitation != nil {
				Expect(u.Spec.Invitation.MaxResends).NotTo(BeNil(), "sample %s", u.Name)
			}
		}

		// The samples show both sides of "omitted is not empty".
		Expect(getUser(ctx, ns, "sam-lee").Spec.Roles).To(BeNil())
		Expect(getUser(ctx, ns, "alex-kim").Spec.Groups).To(HaveValue(BeEmpty()))
	})

	It("are accepted and defaulted (CipherscaleGroupMembership)", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		objs := readObjects(filepath.Join(samples, "iam_v1alpha1_cipherscalegroupmembership.yaml"))
		Expect(len(objs)).To(BeNumerically(">=", 2))
		policies := map[v1alpha1.MembershipPolicy]bool{}
		for _, o := range objs {
			Expect(o.GetKind()).To(Equal(kindMembership))
			o.SetNamespace(ns)
			Expect(k8sClient.Create(ctx, o)).To(Succeed(), "sample %s", o.GetName())

			m := &v1alpha1.CipherscaleGroupMembership{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), m)).To(Succeed())
			Expect(m.Spec.Policy).NotTo(BeEmpty())
			Expect(m.Spec.DeletionPolicy).NotTo(BeEmpty())
			policies[m.Spec.Policy] = true
		}
		Expect(policies).To(HaveKey(v1alpha1.MembershipPolicyAdditive))
		Expect(policies).To(HaveKey(v1alpha1.MembershipPolicyAuthoritative))

		// The Additive sample leaves deletionPolicy out: it defaults to Delete.
		m := &v1alpha1.CipherscaleGroupMembership{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "contractors"}, m)).To(Succeed())
		Expect(m.Spec.Policy).To(Equal(v1alpha1.MembershipPolicyAdditive))
		Expect(m.Spec.DeletionPolicy).To(Equal(v1alpha1.MembershipDeletionPolicyDelete))
		Expect(m.Spec.Members).To(HaveLen(2))
	})
})

var _ = Describe("Defaulting", func() {
	It("fills in active, adoptionPolicy and invitation.maxResends on a CipherscaleUser", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		Expect(k8sClient.Create(ctx, object(kindUser, ns, "minimal", spec(`
email: minimal@example.com
invitation:
  resendAfter: 24h
`)))).To(Succeed())

		u := getUser(ctx, ns, "minimal")
		Expect(u.Spec.Active).To(HaveValue(BeTrue()))
		Expect(u.Spec.AdoptionPolicy).To(Equal(v1alpha1.AdoptionPolicyIfExists))
		Expect(u.Spec.DeletionPolicy).To(BeEmpty(), "empty means the operator's default")
		Expect(u.Spec.Invitation).NotTo(BeNil())
		Expect(u.Spec.Invitation.MaxResends).To(HaveValue(BeEquivalentTo(3)))
		Expect(u.Spec.Invitation.ResendAfter.Duration.String()).To(Equal("24h0m0s"))
	})

	It("keeps explicit values instead of the defaults", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		Expect(k8sClient.Create(ctx, object(kindUser, ns, "explicit", spec(`
email: explicit@example.com
active: false
adoptionPolicy: Never
deletionPolicy: Orphan
invitation:
  resendAfter: 1m
  maxResends: 0
`)))).To(Succeed())

		u := getUser(ctx, ns, "explicit")
		Expect(u.Spec.Active).To(HaveValue(BeFalse()))
		Expect(u.Spec.AdoptionPolicy).To(Equal(v1alpha1.AdoptionPolicyNever))
		Expect(u.Spec.DeletionPolicy).To(Equal(v1alpha1.DeletionPolicyOrphan))
		Expect(u.Spec.Invitation.MaxResends).To(HaveValue(BeEquivalentTo(0)))
	})

	It("fills in policy Additive and deletionPolicy Delete on a CipherscaleGroupMembership", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		Expect(k8sClient.Create(ctx, object(kindMembership, ns, "minimal", spec(`
groupId: aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
`)))).To(Succeed())

		m := &v1alpha1.CipherscaleGroupMembership{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "minimal"}, m)).To(Succeed())
		Expect(m.Spec.Policy).To(Equal(v1alpha1.MembershipPolicyAdditive))
		Expect(m.Spec.DeletionPolicy).To(Equal(v1alpha1.MembershipDeletionPolicyDelete))
		Expect(m.Spec.Members).To(BeEmpty())
	})
})
