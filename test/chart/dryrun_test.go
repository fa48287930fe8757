package chart_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ensure creates obj unless it exists.
func ensure(obj client.Object) {
	GinkgoHelper()
	if err := k8sClient.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// restricted labels a namespace so that Pod Security admission enforces, and warns about, the
// restricted standard.
var restricted = map[string]string{
	"pod-security.kubernetes.io/enforce": "restricted",
	"pod-security.kubernetes.io/warn":    "restricted",
	"pod-security.kubernetes.io/audit":   "restricted",
}

// dryRunApply sends every object to the API server as a server-side apply with dryRun=All: the
// server validates and admits it (schema, CRD schema, RBAC, Pod Security warnings) and stores
// nothing. Each object must be accepted without a warning.
func dryRunApply(objs []*unstructured.Unstructured) {
	GinkgoHelper()
	Expect(objs).NotTo(BeEmpty())
	warnings.take()
	for _, o := range objs {
		By("dry-running " + o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName())
		err := warnClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.DryRunAll, client.FieldOwner("test"), client.ForceOwnership)
		Expect(err).NotTo(HaveOccurred(), "the API server refused %s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
		Expect(warnings.take()).To(BeEmpty(), "warnings about %s %s", o.GetKind(), o.GetName())
	}
}

var _ = Describe("the rendered manifests, dry-run on a real API server", Ordered, func() {
	BeforeAll(func() {
		// The namespaces exist before an install: the release's (restricted, as the project's
		// own config/manager namespace is) and the watched ones.
		ensure(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNS, Labels: restricted}})
		ensure(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}})
		ensure(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}})
		// The PriorityClass the custom values name.
		ensure(&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "operators-high"}, Value: 1000000})
	})

	It("accepts every object of the default render", func() {
		objs := render(release, releaseNS, defaultValues())
		dryRunApply(objs)
	})

	// The ServiceMonitor is dry-run too, against the stand-in CRD the suite installs (see
	// serviceMonitorCRD): it proves the group, version, kind and scope, not the Prometheus
	// Operator's own schema.
	It("accepts every object of the render with every value changed, ServiceMonitor included", func() {
		objs := render(release, releaseNS, customValues)
		Expect(ofKind(objs, "ServiceMonitor")).To(HaveLen(1))
		Expect(ofKind(objs, "PodDisruptionBudget")).To(HaveLen(1))
		dryRunApply(objs)
	})

	It("admits the manager's pod in a namespace that enforces the restricted Pod Security Standard", func() {
		for _, values := range []any{defaultValues(), customValues} {
			d := deploymentOf(render(release, releaseNS, values))
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "manager-", Namespace: releaseNS, Labels: d.Spec.Template.Labels},
				Spec:       d.Spec.Template.Spec,
			}
			warnings.take()
			Expect(warnClient.Create(ctx, pod, client.DryRunAll)).To(Succeed())
			Expect(warnings.take()).To(BeEmpty())
		}

		By("a privileged pod being refused there, so the check above is not vacuous")
		bad := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-", Namespace: releaseNS},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "bad", Image: "busybox",
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}}},
		}
		err := k8sClient.Create(ctx, bad, client.DryRunAll)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("violates PodSecurity"))
	})
})

var _ = Describe("helm install --dry-run=server", func() {
	It("passes against the API server and prints the NOTES", func() {
		ensure(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNS, Labels: restricted}})
		user, err := testEnv.AddUser(envtest.User{Name: "helm", Groups: []string{"system:masters"}}, nil)
		Expect(err).NotTo(HaveOccurred())
		kubeconfig, err := user.KubeConfig()
		Expect(err).NotTo(HaveOccurred())
		f := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		Expect(os.WriteFile(f, kubeconfig, 0o600)).To(Succeed())

		out, err := helm("install", release, chartDir, "--kubeconfig", f, "--namespace", releaseNS,
			"--dry-run=server", "--set", "apiKey.existingSecret="+secretName, "--set", "watchNamespaces={team-a,team-b}")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("NOTES:"))
		_, notes, found := strings.Cut(out, "NOTES:")
		Expect(found).To(BeTrue())
		Expect(notes).To(ContainSubstring(`ClusterCipherscaleTenant "default" is the tenant of every CipherscaleUser and membership`))
		Expect(notes).To(ContainSubstring("annotate secret "+secretName+" cipherscale.com/allowed-tenants=ClusterCipherscaleTenant/default"),
			"the NOTES say how to let the default tenant use its Secret")
		Expect(notes).To(ContainSubstring("kubectl get ccst default"))
		Expect(notes).To(ContainSubstring("Watched namespaces: team-a, team-b"))
		Expect(notes).To(ContainSubstring("kubectl wait --for=condition=Ready cipherscaleuser/jane-smith -n team-a"))
		Expect(notes).To(ContainSubstring("https://" + fullname + "-metrics." + releaseNS + ".svc:8443/metrics"))
	})
})
