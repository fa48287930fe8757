package onboarding

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
)

// ensureTenantKind installs a schemaless CRD for a tenant kind unless the cluster already has
// one (once tenants.md's kinds exist, config/crd/bases brings the real CRD).
func ensureTenantKind(kind, plural, scope string) {
	GinkgoHelper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": plural + ".iam.cipherscale.com"},
		"spec": map[string]any{
			"group": "iam.cipherscale.com",
			"names": map[string]any{"kind": kind, "listKind": kind + "List", "plural": plural, "singular": plural[:len(plural)-1]},
			"scope": scope,
			"versions": []any{map[string]any{
				"name": "v1alpha1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	if err := k8s.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

func ensureNamespace(name string) {
	GinkgoHelper()
	err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

func createTenantObject(kind, namespace, name string, spec map[string]any) {
	GinkgoHelper()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "iam.cipherscale.com/v1alpha1", "kind": kind,
		"metadata": map[string]any{"name": name}, "spec": spec}}
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	Eventually(func() error { return client.IgnoreAlreadyExists(k8s.Create(ctx, u)) }, 30*time.Second, 200*time.Millisecond).Should(Succeed())
}

// keySimURL is a small tenant of its own for these tests, so that they leave the 1,000-user
// tenant of the round trip alone, whatever order the containers run in.
var keySimURL string

var _ = Describe("the API key", Ordered, func() {
	var kubeconfig string
	BeforeAll(func() {
		kubeconfig = "KUBECONFIG=" + cp.Kubeconfig
		s := simulator.New(apiKey)
		url, stop, err := s.Start("127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(stop)
		keySimURL = url
		_, err = s.AddUser(simulator.UserSeed{Email: "someone@example.com", Status: cipherscale.StatusActive})
		Expect(err).NotTo(HaveOccurred())
		ensureTenantKind("ClusterCipherscaleTenant", "clustercipherscaletenants", "Cluster")
		ensureTenantKind("CipherscaleTenant", "cipherscaletenants", "Namespaced")
		ensureNamespace("cipherscale-system")
		ensureNamespace("team-qa")
		for _, s := range []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "cipherscale-system", Name: "cipherscale-prod"}, Data: map[string][]byte{"api-key": []byte(apiKey)}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "team-qa", Name: "cipherscale-qa"}, Data: map[string][]byte{"token": []byte(apiKey + "\n")}},
		} {
			Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, s))).To(Succeed())
		}
		createTenantObject("ClusterCipherscaleTenant", "", "prod", map[string]any{"url": keySimURL, "namespaceSelector": map[string]any{},
			"apiKeySecretRef": map[string]any{"namespace": "cipherscale-system", "name": "cipherscale-prod", "key": "api-key"}})
		createTenantObject("ClusterCipherscaleTenant", "", "no-key", map[string]any{"url": keySimURL, "namespaceSelector": map[string]any{},
			"apiKeySecretRef": map[string]any{"namespace": "cipherscale-system", "name": "cipherscale-prod", "key": "missing"}})
		createTenantObject("CipherscaleTenant", "team-qa", "qa", map[string]any{"url": keySimURL,
			"apiKeySecretRef": map[string]any{"name": "cipherscale-qa", "key": "token"}})
	})

	It("is read from a cluster tenant's Secret, and the objects name the tenant", func() {
		r := run([]string{kubeconfig}, "export", "--tenant", "ClusterCipherscaleTenant/prod")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("  tenantRef:\n    kind: ClusterCipherscaleTenant\n    name: prod\n"))
	})

	It("is read from a namespaced tenant's Secret in its own namespace", func() {
		r := run([]string{kubeconfig}, "export", "--tenant", "CipherscaleTenant/qa", "--namespace", "team-qa")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("  namespace: team-qa\n"))
		Expect(r.stdout).To(ContainSubstring("  tenantRef:\n    kind: CipherscaleTenant\n    name: qa\n"))
	})

	It("is read from --api-key-file", func() {
		keyFile := filepath.Join(work, "plugin-key")
		Expect(os.WriteFile(keyFile, []byte(apiKey+"\n"), 0o600)).To(Succeed())
		r := run(nil, "export", "--api-url", keySimURL, "--api-key-file", keyFile)
		Expect(r.code).To(Equal(0), r.stderr)
	})

	DescribeTable("is never printed, on any error",
		func(env []string, want string, args ...string) {
			fill := strings.NewReplacer("{sim}", keySimURL, "{kubeconfig}", cp.Kubeconfig)
			for i := range env {
				env[i] = fill.Replace(env[i])
			}
			for i := range args {
				args[i] = fill.Replace(args[i])
			}
			r := run(env, args...)
			Expect(r.stderr).NotTo(ContainSubstring(apiKey + "-revoked"))
			Expect(r.code).To(Equal(1), r.stdout+r.stderr)
			Expect(r.stderr).To(ContainSubstring(want))
		},
		Entry("a key the API refuses", []string{"CIPHERSCALE_API_KEY=" + apiKey + "-revoked"}, "401",
			"export", "--api-url", "{sim}"),
		Entry("an API that does not answer", []string{"CIPHERSCALE_API_KEY=" + apiKey}, "connect",
			"export", "--api-url", "http://127.0.0.1:1"),
		Entry("a plain-HTTP URL on a remote host", []string{"CIPHERSCALE_API_KEY=" + apiKey}, "--api-url",
			"plan", "--api-url", "http://cipherscale.example.com", "--cluster=false", "-f", "/dev/null"),
		Entry("the key given as a flag's value", nil, "flag provided but not defined: -api-key",
			"export", "--api-key="+apiKey),
		Entry("the key given as a flag's next argument", nil, "flag provided but not defined: -api-key",
			"export", "--api-key", apiKey),
		Entry("a Secret without the key the tenant names", []string{"KUBECONFIG={kubeconfig}"}, `has no key "missing"`,
			"export", "--tenant", "ClusterCipherscaleTenant/no-key"),
		Entry("--tenant and --api-url together", []string{"CIPHERSCALE_API_KEY=" + apiKey}, "exclude each other",
			"export", "--tenant", "ClusterCipherscaleTenant/prod", "--api-url", "http://127.0.0.1:1"),
		Entry("no key at all", nil, "no API key", "export", "--api-url", "http://127.0.0.1:1"),
	)
})
