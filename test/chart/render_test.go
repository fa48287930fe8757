package chart_test

import (
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
)

// defaultTenantOf returns the ClusterCipherscaleTenant "default" the chart renders.
func defaultTenantOf(objs []*unstructured.Unstructured) *iamv1alpha1.ClusterCipherscaleTenant {
	GinkgoHelper()
	o := named(objs, "ClusterCipherscaleTenant", "default")
	Expect(o).NotTo(BeNil(), "the chart renders ClusterCipherscaleTenant/default")
	return into[iamv1alpha1.ClusterCipherscaleTenant](o)
}

func deploymentOf(objs []*unstructured.Unstructured) *appsv1.Deployment {
	GinkgoHelper()
	return into[appsv1.Deployment](one(objs, "Deployment"))
}

func managerContainer(d *appsv1.Deployment) corev1.Container {
	GinkgoHelper()
	Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
	c := d.Spec.Template.Spec.Containers[0]
	Expect(c.Name).To(Equal("manager"))
	return c
}

// flagValue returns the value of --name=value in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "true", true
		}
	}
	return "", false
}

func named(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range ofKind(objs, kind) {
		if o.GetName() == name {
			return o
		}
	}
	return nil
}

// expectSecureDeployment checks the settings that make the Deployment secure by default; they
// hold for every set of values.
func expectSecureDeployment(d *appsv1.Deployment, secret, key string) {
	GinkgoHelper()
	pod := d.Spec.Template.Spec
	By("the pod's security context")
	Expect(pod.SecurityContext).NotTo(BeNil())
	Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	Expect(pod.SecurityContext.RunAsUser).To(HaveValue(BeEquivalentTo(65532)))
	Expect(pod.SecurityContext.RunAsGroup).To(HaveValue(BeEquivalentTo(65532)))
	Expect(pod.SecurityContext.SeccompProfile).To(HaveValue(HaveField("Type", corev1.SeccompProfileTypeRuntimeDefault)))
	Expect(pod.AutomountServiceAccountToken).To(HaveValue(BeTrue()), "the manager needs its token")
	Expect(pod.TerminationGracePeriodSeconds).To(HaveValue(BeEquivalentTo(10)))
	Expect(pod.HostNetwork).To(BeFalse())
	Expect(pod.HostPID).To(BeFalse())

	c := managerContainer(d)
	By("the container's security context")
	Expect(c.SecurityContext).NotTo(BeNil())
	Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
	Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	Expect(c.SecurityContext.Privileged).To(Or(BeNil(), HaveValue(BeFalse())))
	Expect(c.SecurityContext.Capabilities).NotTo(BeNil())
	Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
	Expect(c.SecurityContext.Capabilities.Add).To(BeEmpty())

	By("the probes on port 8081")
	Expect(c.Ports).To(ContainElement(SatisfyAll(HaveField("Name", "probes"), HaveField("ContainerPort", BeEquivalentTo(8081)))))
	Expect(c.LivenessProbe).NotTo(BeNil())
	Expect(c.LivenessProbe.HTTPGet).NotTo(BeNil())
	Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	Expect(c.LivenessProbe.HTTPGet.Port).To(Equal(intstr.FromString("probes")))
	Expect(c.ReadinessProbe).NotTo(BeNil())
	Expect(c.ReadinessProbe.HTTPGet).NotTo(BeNil())
	Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	Expect(c.ReadinessProbe.HTTPGet.Port).To(Equal(intstr.FromString("probes")))
	Expect(c.Args).To(ContainElement("--health-probe-bind-address=:8081"))

	By("requests and limits on cpu, memory and ephemeral storage")
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		Expect(c.Resources.Requests).To(HaveKey(r), "request of %s", r)
		Expect(c.Resources.Limits).To(HaveKey(r), "limit of %s", r)
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		Expect(req.Cmp(lim)).To(BeNumerically("<=", 0), "the request of %s is at most its limit", r)
	}

	By("the API key: nowhere in the pod; the manager reads the default tenant's Secret by name")
	Expect(pod.Volumes).To(BeEmpty())
	Expect(c.VolumeMounts).To(BeEmpty())
	for _, a := range c.Args {
		Expect(a).NotTo(Or(ContainSubstring("api-key"), ContainSubstring(secret)), "no flag names the key or its Secret")
	}
	for _, e := range c.Env {
		Expect(e.Name).NotTo(Equal("CIPHERSCALE_API_KEY"))
	}
	Expect(c.EnvFrom).To(BeEmpty())
	_ = key

	By("leader election, always on, in the release namespace")
	Expect(c.Args).To(ContainElement("--leader-elect=true"))
	Expect(c.Args).To(ContainElement("--leader-election-namespace=" + d.Namespace))
	Expect(c.Command).To(Equal([]string{"/manager"}))
}

// expectLabels checks the recommended labels on every object.
func expectLabels(objs []*unstructured.Unstructured, chart chartMeta, appVersion string) {
	GinkgoHelper()
	for _, o := range objs {
		Expect(o.GetLabels()).To(SatisfyAll(
			HaveKeyWithValue("app.kubernetes.io/name", "cipherscale-operator"),
			HaveKeyWithValue("app.kubernetes.io/instance", release),
			HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"),
			HaveKeyWithValue("app.kubernetes.io/version", appVersion),
			HaveKeyWithValue("app.kubernetes.io/part-of", "cipherscale-operator"),
			HaveKeyWithValue("helm.sh/chart", chart.Name+"-"+chart.Version),
		), "labels of %s %s", o.GetKind(), o.GetName())
	}
}

// expectNoSecretsNoWildcards checks every Role and ClusterRole: Secrets only read one by name
// (get: the Secrets tenant objects name; never list or watch, so never a cache of them all),
// no wildcard.
func expectNoSecretsNoWildcards(objs []*unstructured.Unstructured) {
	GinkgoHelper()
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, o := range ofKind(objs, kind) {
			role := into[rbacv1.ClusterRole](o)
			for _, r := range role.Rules {
				if slices.Contains(r.Resources, "secrets") {
					Expect(r.Resources).To(Equal([]string{"secrets"}), "%s %s: Secrets in a rule of their own", kind, o.GetName())
					Expect(r.Verbs).To(Equal([]string{"get"}), "%s %s may do more than get Secrets", kind, o.GetName())
				}
				for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.NonResourceURLs, r.ResourceNames} {
					for _, v := range list {
						Expect(v).NotTo(ContainSubstring("*"), "%s %s has a wildcard", kind, o.GetName())
					}
				}
			}
		}
	}
}

var _ = Describe("helm template", func() {
	var chart chartMeta
	BeforeEach(func() { chart = readChartMeta() })

	Context("with the default values (and the required Secret name)", func() {
		var objs []*unstructured.Unstructured
		BeforeEach(func() { objs = render(release, releaseNS, defaultValues()) })

		It("renders exactly the expected objects", func() {
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetName())
			}
			Expect(got).To(ConsistOf(
				"ServiceAccount/"+fullname,
				"Deployment/"+fullname,
				"ClusterRole/"+fullname+"-manager",
				"ClusterRoleBinding/"+fullname+"-manager",
				"Role/"+fullname+"-leader-election",
				"RoleBinding/"+fullname+"-leader-election",
				"ClusterRole/"+fullname+"-metrics-auth",
				"ClusterRoleBinding/"+fullname+"-metrics-auth",
				"ClusterRole/"+fullname+"-metrics-reader",
				"Service/"+fullname+"-metrics",
				"NetworkPolicy/"+fullname,
				"ClusterCipherscaleTenant/default",
			), "no ServiceMonitor (off by default), no PodDisruptionBudget (one replica), no Secret")
			expectLabels(objs, chart, chart.AppVersion)
			for _, o := range objs {
				if !strings.HasPrefix(o.GetKind(), "Cluster") {
					Expect(o.GetNamespace()).To(Equal(releaseNS), "%s %s", o.GetKind(), o.GetName())
				}
			}
		})

		It("renders ClusterCipherscaleTenant/default from the values' defaults, the Secret from apiKey.existingSecret", func() {
			t := defaultTenantOf(objs)
			Expect(t.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/instance", release))
			Expect(t.Spec.URL).To(Equal("https://public-api.cipherscale.com/qa"))
			Expect(t.Spec.APIKeySecretRef).To(Equal(iamv1alpha1.NamespacedSecretKeyReference{Namespace: releaseNS, Name: secretName, Key: "api-key"}))
			Expect(t.Spec.NamespaceSelector).To(Equal(&metav1.LabelSelector{}), "every namespace")
			Expect(t.Spec.Adoption).To(BeNil(), "no namespace may adopt")
			Expect(t.Spec.Privileged).To(BeNil(), "no namespace may hold privileged objects")
			Expect(t.Spec.RequestsPerSecond).To(HaveValue(BeEquivalentTo(10)))
			Expect(t.Spec.Burst).To(HaveValue(BeEquivalentTo(20)))
			Expect(t.Spec.ResyncInterval).To(HaveValue(Equal(metav1.Duration{Duration: 10 * time.Minute})))
			Expect(t.Spec.RemovalBudget).To(Equal(&iamv1alpha1.RemovalBudgetSpec{PerHour: ptr.To(int32(25))}))
			Expect(t.Spec.UndeclaredUsers).To(Equal(&iamv1alpha1.UndeclaredUsersSpec{Policy: iamv1alpha1.UndeclaredUsersIgnore,
				GracePeriod: &metav1.Duration{Duration: 24 * time.Hour}}))
			Expect(t.Spec.DefaultDeletionPolicy).To(Equal(iamv1alpha1.DeletionPolicyDelete))
			Expect(t.Spec.Invitations).To(Equal(&iamv1alpha1.InvitationsSpec{MaxPerDay: ptr.To(int32(5))}))
		})

		It("runs the manager with every default as an explicit flag, and no tenant concern", func() {
			d := deploymentOf(objs)
			Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(1)))
			c := managerContainer(d)
			Expect(c.Image).To(Equal("ghcr.io/cipherscale/cipherscale-operator:" + chart.AppVersion))
			Expect(c.ImagePullPolicy).To(Equal(corev1.PullAlways))
			Expect(c.Args).To(Equal([]string{
				"--api-hosts=public-api.cipherscale.com",
				"--max-concurrent-reconciles=16",
				"--create-batch-window=50ms",
				"--soft-memory-limit-mib=80",
				"--metrics-bind-address=:8443",
				"--metrics-secure=true",
				"--health-probe-bind-address=:8081",
				"--leader-elect=true",
				"--leader-election-namespace=" + releaseNS,
				"--zap-log-level=info",
			}))
			_, watching := flagValue(c.Args, "watch-namespaces")
			Expect(watching).To(BeFalse(), "every namespace by default")
			_, insecure := flagValue(c.Args, "allow-insecure-http")
			Expect(insecure).To(BeFalse())
			Expect(c.Ports).To(ContainElement(SatisfyAll(HaveField("Name", "metrics"), HaveField("ContainerPort", BeEquivalentTo(8443)))))
			Expect(c.Resources.Requests).To(HaveKeyWithValue(corev1.ResourceMemory, resource.MustParse("64Mi")))
			Expect(c.Resources.Limits).To(HaveKeyWithValue(corev1.ResourceMemory, resource.MustParse("256Mi")))

			expectSecureDeployment(d, secretName, "api-key")
			pod := d.Spec.Template.Spec
			Expect(pod.ServiceAccountName).To(Equal(fullname))
			Expect(pod.NodeSelector).To(BeEmpty())
			Expect(pod.Tolerations).To(BeEmpty())
			Expect(pod.Affinity).To(BeNil())
			Expect(pod.PriorityClassName).To(BeEmpty())
			Expect(pod.ImagePullSecrets).To(BeEmpty())
			Expect(d.Spec.Selector.MatchLabels).To(Equal(map[string]string{
				"app.kubernetes.io/name":      "cipherscale-operator",
				"app.kubernetes.io/instance":  release,
				"app.kubernetes.io/component": "manager",
			}))
			for k, v := range d.Spec.Selector.MatchLabels {
				Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(k, v))
			}
		})

		It("binds the manager's rules cluster-wide and leader election in the release namespace", func() {
			cr := into[rbacv1.ClusterRole](named(objs, "ClusterRole", fullname+"-manager"))
			Expect(ruleSet(cr.Rules)).To(Equal(ruleSet(configRoleRules())))
			crb := into[rbacv1.ClusterRoleBinding](named(objs, "ClusterRoleBinding", fullname+"-manager"))
			Expect(crb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: fullname + "-manager"}))
			Expect(crb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: fullname, Namespace: releaseNS}}))
			Expect(ofKind(objs, "Role")).To(HaveLen(1), "only the leader election Role")

			le := into[rbacv1.Role](named(objs, "Role", fullname+"-leader-election"))
			Expect(le.Namespace).To(Equal(releaseNS))
			Expect(ruleSet(le.Rules)).To(Equal(ruleSet([]rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
				// controller-runtime's leader election records core/v1 Events.
				{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
				{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			})))
			leb := into[rbacv1.RoleBinding](named(objs, "RoleBinding", fullname+"-leader-election"))
			Expect(leb.Namespace).To(Equal(releaseNS))
			Expect(leb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: fullname + "-leader-election"}))
			Expect(leb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: fullname, Namespace: releaseNS}}))
			expectNoSecretsNoWildcards(objs)
		})

		It("protects the metrics endpoint and serves it over HTTPS", func() {
			auth := into[rbacv1.ClusterRole](named(objs, "ClusterRole", fullname+"-metrics-auth"))
			Expect(ruleSet(auth.Rules)).To(Equal(ruleSet([]rbacv1.PolicyRule{
				{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
				{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
			})))
			authB := into[rbacv1.ClusterRoleBinding](named(objs, "ClusterRoleBinding", fullname+"-metrics-auth"))
			Expect(authB.RoleRef.Name).To(Equal(fullname + "-metrics-auth"))
			Expect(authB.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: fullname, Namespace: releaseNS}}))
			reader := into[rbacv1.ClusterRole](named(objs, "ClusterRole", fullname+"-metrics-reader"))
			Expect(reader.Rules).To(Equal([]rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}))

			svc := into[corev1.Service](one(objs, "Service"))
			Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
			Expect(svc.Spec.Ports).To(Equal([]corev1.ServicePort{{Name: "https", Port: 8443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")}}))
			Expect(svc.Spec.Selector).To(Equal(deploymentOf(objs).Spec.Selector.MatchLabels))

			np := into[networkingv1.NetworkPolicy](one(objs, "NetworkPolicy"))
			Expect(np.Spec.PodSelector.MatchLabels).To(Equal(deploymentOf(objs).Spec.Selector.MatchLabels))
			Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
			Expect(np.Spec.Ingress).To(HaveLen(1))
			Expect(np.Spec.Ingress[0].From).To(BeEmpty(), "any source by default: the endpoint authenticates")
			Expect(np.Spec.Ingress[0].Ports).To(HaveLen(1))
			Expect(np.Spec.Ingress[0].Ports[0].Port).To(HaveValue(Equal(intstr.FromInt32(8443))))
			Expect(np.Spec.Egress).To(Equal([]networkingv1.NetworkPolicyEgressRule{{}}), "egress open")
		})
	})

	Context("with every value changed", func() {
		var objs []*unstructured.Unstructured
		BeforeEach(func() { objs = render(release, releaseNS, customValues) })

		It("passes every value to the manager", func() {
			d := deploymentOf(objs)
			Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
			c := managerContainer(d)
			Expect(c.Image).To(Equal("registry.example.com/platform/cipherscale-operator:v9.8.7"))
			Expect(c.ImagePullPolicy).To(Equal(corev1.PullIfNotPresent))
			for flag, want := range map[string]string{
				"allow-insecure-http":       "true",
				"api-hosts":                 "cipherscale.internal.example,*.cipherscale.example",
				"max-concurrent-reconciles": "4",
				"create-batch-window":       "100ms",
				"watch-namespaces":          "team-a,team-b",
				"metrics-bind-address":      ":9443",
				"metrics-secure":            "true",
				"zap-log-level":             "debug",
				"leader-elect":              "true",
				"leader-election-namespace": releaseNS,
			} {
				got, ok := flagValue(c.Args, flag)
				Expect(ok).To(BeTrue(), "--%s is passed", flag)
				Expect(got).To(Equal(want), "--%s", flag)
			}
			Expect(c.Ports).To(ContainElement(SatisfyAll(HaveField("Name", "metrics"), HaveField("ContainerPort", BeEquivalentTo(9443)))))
			Expect(c.Resources.Requests).To(Equal(corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
				corev1.ResourceEphemeralStorage: resource.MustParse("32Mi"),
			}))
			Expect(c.Resources.Limits).To(Equal(corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi"),
				corev1.ResourceEphemeralStorage: resource.MustParse("128Mi"),
			}))
			expectSecureDeployment(d, "cs-token", "token")

			By("ClusterCipherscaleTenant/default holds every tenant value")
			t := defaultTenantOf(objs)
			Expect(t.Spec.URL).To(Equal("https://cipherscale.internal.example:8443/api"))
			Expect(t.Spec.APIKeySecretRef).To(Equal(iamv1alpha1.NamespacedSecretKeyReference{Namespace: releaseNS, Name: "cs-token", Key: "token"}))
			Expect(t.Spec.NamespaceSelector).To(Equal(&metav1.LabelSelector{MatchLabels: map[string]string{"cipherscale.com/tenant": "default"}}))
			Expect(t.Spec.Adoption).To(Equal(&iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": "team-a"}}}))
			Expect(t.Spec.Privileged).To(Equal(&iamv1alpha1.PrivilegedSpec{
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{"platform", "team-a"}}}},
				Roles: []string{"11111111-1111-4111-8111-111111111111"}}))
			Expect(t.Spec.RequestsPerSecond).To(HaveValue(BeEquivalentTo(3)))
			Expect(t.Spec.Burst).To(HaveValue(BeEquivalentTo(7)))
			Expect(t.Spec.ResyncInterval).To(HaveValue(Equal(metav1.Duration{Duration: 5*time.Minute + 30*time.Second})))
			Expect(t.Spec.RemovalBudget).To(Equal(&iamv1alpha1.RemovalBudgetSpec{PerHour: ptr.To(int32(40))}))
			Expect(t.Spec.UndeclaredUsers).To(Equal(&iamv1alpha1.UndeclaredUsersSpec{Policy: iamv1alpha1.UndeclaredUsersReport,
				Exclude: []string{"breakglass@example.com", "*@partner.example.com"}, GracePeriod: &metav1.Duration{Duration: 48 * time.Hour}}))
			Expect(t.Spec.DefaultDeletionPolicy).To(Equal(iamv1alpha1.DeletionPolicyDeactivate))
			Expect(t.Spec.Invitations).To(Equal(&iamv1alpha1.InvitationsSpec{MaxPerDay: ptr.To(int32(3))}))

			pod := d.Spec.Template.Spec
			Expect(pod.ServiceAccountName).To(Equal("cso-manager"))
			Expect(pod.NodeSelector).To(Equal(map[string]string{"kubernetes.io/os": "linux", "node-role.example.com/operators": "true"}))
			Expect(pod.Tolerations).To(Equal([]corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "operators", Effect: corev1.TaintEffectNoSchedule}}))
			Expect(pod.PriorityClassName).To(Equal("operators-high"))
			Expect(pod.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "regcred"}}))
			Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("example.com/team", "platform"))
			Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("kubectl.kubernetes.io/default-container", "manager"))
			Expect(d.Spec.Template.Labels).To(HaveKeyWithValue("example.com/cost-center", "iam"))
			By("two replicas and no affinity given: a preferred anti-affinity spreads them over nodes")
			Expect(pod.Affinity).NotTo(BeNil())
			Expect(pod.Affinity.PodAntiAffinity).NotTo(BeNil())
			terms := pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
			Expect(terms).To(HaveLen(1))
			Expect(terms[0].PodAffinityTerm.TopologyKey).To(Equal("kubernetes.io/hostname"))
			Expect(terms[0].PodAffinityTerm.LabelSelector.MatchLabels).To(Equal(d.Spec.Selector.MatchLabels))

			pdb := into[policyv1.PodDisruptionBudget](one(objs, "PodDisruptionBudget"))
			Expect(pdb.Spec.MaxUnavailable).To(HaveValue(Equal(intstr.FromInt32(1))))
			Expect(pdb.Spec.Selector.MatchLabels).To(Equal(d.Spec.Selector.MatchLabels))

			sa := into[corev1.ServiceAccount](one(objs, "ServiceAccount"))
			Expect(sa.Name).To(Equal("cso-manager"))
			Expect(sa.Annotations).To(HaveKeyWithValue("example.com/owner", "platform"))
			expectLabels(objs, chart, "v9.8.7")
		})

		It("grants the manager's rules by a Role and a RoleBinding in each watched namespace, and no ClusterRole", func() {
			Expect(named(objs, "ClusterRole", fullname+"-manager")).To(BeNil())
			Expect(named(objs, "ClusterRoleBinding", fullname+"-manager")).To(BeNil())
			var clusterRoles []string
			for _, o := range ofKind(objs, "ClusterRole") {
				clusterRoles = append(clusterRoles, o.GetName())
			}
			Expect(clusterRoles).To(ConsistOf(fullname+"-metrics-auth", fullname+"-metrics-reader", fullname+"-cluster-tenants-reader"),
				"the metrics roles, which name no namespaced resource, and the reader of cluster tenants")
			reader := into[rbacv1.ClusterRole](named(objs, "ClusterRole", fullname+"-cluster-tenants-reader"))
			Expect(ruleSet(reader.Rules)).To(Equal(ruleSet([]rbacv1.PolicyRule{
				{APIGroups: []string{"iam.cipherscale.com"}, Resources: []string{"clustercipherscaletenants"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
			})), "it may only read ClusterCipherscaleTenants (the default one) and namespaces")
			readerB := into[rbacv1.ClusterRoleBinding](named(objs, "ClusterRoleBinding", fullname+"-cluster-tenants-reader"))
			Expect(readerB.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "cso-manager", Namespace: releaseNS}}))
			secretRole := into[rbacv1.Role](named(objs, "Role", fullname+"-default-tenant-secret"))
			Expect(secretRole.Namespace).To(Equal(releaseNS))
			Expect(secretRole.Rules).To(Equal([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"},
				ResourceNames: []string{"cs-token"}, Verbs: []string{"get"}}}), "the default tenant's Secret alone")

			want := ruleSet(configRoleRules())
			roles := map[string]*rbacv1.Role{}
			for _, o := range ofKind(objs, "Role") {
				if o.GetName() == fullname+"-manager" {
					roles[o.GetNamespace()] = into[rbacv1.Role](o)
				}
			}
			Expect(roles).To(HaveLen(2))
			bindings := map[string]*rbacv1.RoleBinding{}
			for _, o := range ofKind(objs, "RoleBinding") {
				if o.GetName() == fullname+"-manager" {
					bindings[o.GetNamespace()] = into[rbacv1.RoleBinding](o)
				}
			}
			Expect(bindings).To(HaveLen(2))
			for _, ns := range []string{"team-a", "team-b"} {
				Expect(roles).To(HaveKey(ns))
				Expect(ruleSet(roles[ns].Rules)).To(Equal(want), "the rules of the Role in %s", ns)
				Expect(bindings).To(HaveKey(ns))
				Expect(bindings[ns].RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: fullname + "-manager"}))
				Expect(bindings[ns].Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "cso-manager", Namespace: releaseNS}}))
			}
			le := named(objs, "Role", fullname+"-leader-election")
			Expect(le).NotTo(BeNil())
			Expect(le.GetNamespace()).To(Equal(releaseNS))
			expectNoSecretsNoWildcards(objs)
		})

		It("creates the ServiceMonitor and narrows the NetworkPolicy", func() {
			sm := one(objs, "ServiceMonitor")
			Expect(sm.GetAPIVersion()).To(Equal("monitoring.coreos.com/v1"))
			Expect(sm.GetNamespace()).To(Equal(releaseNS))
			Expect(sm.GetLabels()).To(HaveKeyWithValue("release", "kube-prometheus"))
			endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			Expect(endpoints).To(HaveLen(1))
			ep := endpoints[0].(map[string]any)
			Expect(ep).To(HaveKeyWithValue("port", "https"))
			Expect(ep).To(HaveKeyWithValue("scheme", "https"))
			Expect(ep).To(HaveKeyWithValue("interval", "15s"))
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			Expect(sel).To(Equal(deploymentOf(objs).Spec.Selector.MatchLabels))

			svc := into[corev1.Service](one(objs, "Service"))
			Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(9443))
			Expect(svc.Spec.Ports[0].Name).To(Equal("https"))

			np := into[networkingv1.NetworkPolicy](one(objs, "NetworkPolicy"))
			Expect(np.Spec.Ingress).To(HaveLen(1))
			Expect(np.Spec.Ingress[0].Ports[0].Port).To(HaveValue(Equal(intstr.FromInt32(9443))))
			Expect(np.Spec.Ingress[0].From).To(HaveLen(1))
			Expect(np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels).To(Equal(map[string]string{"kubernetes.io/metadata.name": "monitoring"}))
		})
	})

	It("drops the metrics endpoint, its Service, RBAC and ServiceMonitor when metrics are off", func() {
		objs := render(release, releaseNS, with(map[string]any{
			"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": true}},
		}))
		c := managerContainer(deploymentOf(objs))
		Expect(c.Args).To(ContainElement("--metrics-bind-address=0"))
		Expect(c.Ports).To(ConsistOf(HaveField("Name", "probes")))
		Expect(ofKind(objs, "Service")).To(BeEmpty())
		Expect(ofKind(objs, "ServiceMonitor")).To(BeEmpty())
		Expect(ofKind(objs, "ClusterRole")).To(ConsistOf(WithTransform((*unstructured.Unstructured).GetName, Equal(fullname+"-manager"))))
		np := into[networkingv1.NetworkPolicy](one(objs, "NetworkPolicy"))
		Expect(np.Spec.Ingress).To(BeEmpty(), "no port to reach")
		Expect(np.Spec.PolicyTypes).To(ContainElement(networkingv1.PolicyTypeIngress))
	})

	It("uses an existing ServiceAccount when told not to create one", func() {
		objs := render(release, releaseNS, with(map[string]any{
			"serviceAccount": map[string]any{"create": false, "name": "preexisting"},
		}))
		Expect(ofKind(objs, "ServiceAccount")).To(BeEmpty())
		Expect(deploymentOf(objs).Spec.Template.Spec.ServiceAccountName).To(Equal("preexisting"))
		for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
			for _, o := range ofKind(objs, kind) {
				b := into[rbacv1.RoleBinding](o)
				Expect(b.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "preexisting", Namespace: releaseNS}}))
			}
		}
	})

	It("renders no NetworkPolicy when it is disabled, and honors a given affinity", func() {
		affinity := map[string]any{"nodeAffinity": map[string]any{
			"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{
				map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{"a"}}}},
			}},
		}}
		objs := render(release, releaseNS, with(map[string]any{
			"networkPolicy": map[string]any{"enabled": false},
			"replicas":      3,
			"affinity":      affinity,
		}))
		Expect(ofKind(objs, "NetworkPolicy")).To(BeEmpty())
		pod := deploymentOf(objs).Spec.Template.Spec
		Expect(pod.Affinity).NotTo(BeNil())
		Expect(pod.Affinity.PodAntiAffinity).To(BeNil(), "the given affinity replaces the default one")
		Expect(pod.Affinity.NodeAffinity).NotTo(BeNil())
		Expect(ofKind(objs, "PodDisruptionBudget")).To(HaveLen(1))
	})

	It("names the objects after a release whose name holds the chart's name", func() {
		objs := render("my-cipherscale-operator", "ops", defaultValues())
		d := deploymentOf(objs)
		Expect(d.Name).To(Equal("my-cipherscale-operator"), "a release name holding the chart's name is used as is")
		Expect(managerContainer(d).Image).To(HaveSuffix(":" + chart.AppVersion))
		Expect(ptr.Deref(d.Spec.Replicas, 0)).To(BeEquivalentTo(1))
	})
})
