package devenv

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/controller"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// Scheme returns a scheme with the built-in kinds and the operator's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := iamv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// binaries are the commands BuildBinaries knows, by name: their packages.
var binaries = map[string]string{
	"manager":             ".",
	"cipherscale-sim":     "./hack/cipherscale-sim",
	"kubectl-cipherscale": "./cmd/kubectl-cipherscale",
}

// BuildBinaries builds the named commands ("manager", "cipherscale-sim", "kubectl-cipherscale";
// the first two when none is named) into dir with the flags of `make build`, once per call, and
// returns their paths by name. A suite calls it once, in its BeforeSuite.
func BuildBinaries(root, dir string, names ...string) (map[string]string, error) {
	if len(names) == 0 {
		names = []string{"manager", "cipherscale-sim"}
	}
	bins := map[string]string{}
	for _, name := range names {
		pkg, ok := binaries[name]
		if !ok {
			return nil, fmt.Errorf("no command %q to build", name)
		}
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %w\n%s", name, err, b)
		}
		bins[name] = out
	}
	return bins, nil
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, into)
}

// GrantOperator binds exactly the generated ClusterRole (config/rbac/role.yaml, which the chart's
// rules are tested equal to) to user, and writes user's kubeconfig to kubeconfigPath.
func (cp *ControlPlane) GrantOperator(ctx context.Context, root, user, kubeconfigPath string) error {
	var role rbacv1.ClusterRole
	if err := readYAML(filepath.Join(root, "config", "rbac", "role.yaml"), &role); err != nil {
		return err
	}
	if err := cp.Client.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if err := cp.Client.Create(ctx, binding); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return cp.WriteKubeconfig(kubeconfigPath, user, nil)
}

// GrantLeaderElection creates namespace (when missing) with the leader election Role of
// config/rbac bound to user.
func (cp *ControlPlane) GrantLeaderElection(ctx context.Context, root, namespace, user string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := cp.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	var role rbacv1.Role
	if err := readYAML(filepath.Join(root, "config", "rbac", "leader_election_role.yaml"), &role); err != nil {
		return err
	}
	role.Namespace = namespace
	// Several specs of one suite may grant it to the same user: a grant that exists is kept.
	if err := cp.Client.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	err := cp.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// InProcess is the operator running in this process, wired as main.go wires it, against the
// control plane and an in-memory simulator served over HTTP.
type InProcess struct {
	Sim    *simulator.Server
	SimURL string
	// Errors receives the manager's error when it stops.
	Errors <-chan error
	// Tenants is the operator's registry of tenants (their removal budgets among others).
	Tenants *tenant.Registry

	extra *extraUsers
}

// ListAlso makes the operator's reads of the tenant (the list, and reads by id) return u as well,
// as a tenant the simulator cannot model would: the simulator refuses, as the contract says
// the service does, a second user whose email differs only in case from another's.
func (p *InProcess) ListAlso(u cipherscale.User) { p.extra.add(u) }

// extraUsers are users added to what the default tenant answers.
type extraUsers struct {
	mu    sync.Mutex
	users []cipherscale.User
}

func (e *extraUsers) add(u cipherscale.User) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = time.Now().UTC() // as the service would stamp a user it just made
	}
	e.users = append(e.users, u)
}

func (e *extraUsers) list() []cipherscale.User {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]cipherscale.User(nil), e.users...)
}

// wrap returns api answering with the extra users as well.
func (e *extraUsers) wrap(api cipherscale.API) cipherscale.API {
	return &withExtraUsers{API: api, extra: e}
}

// withExtraUsers is a tenant's client with the extra users added to what the tenant answers.
type withExtraUsers struct {
	cipherscale.API
	extra *extraUsers
}

func (w *withExtraUsers) ListUsers(ctx context.Context) ([]cipherscale.User, error) {
	users, err := w.API.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	return append(users, w.extra.list()...), nil
}

// ListUsersPage counts the extra users in the total and, in a page of the users most recently
// changed first, shows each extra user where its updatedAt puts it: on the first page when it
// is newer than the page's oldest, on the last when it is older than the page's newest, in
// order (a reader dedupes the rare user shown twice). Only that order matters to the operator:
// it stops an incremental read at the first user older than its last read.
func (w *withExtraUsers) ListUsersPage(ctx context.Context, limit, offset int, sort ...string) (*cipherscale.Page, error) {
	p, err := w.API.ListUsersPage(ctx, limit, offset, sort...)
	if err != nil {
		return nil, err
	}
	extra := w.extra.list()
	p.Total += len(extra)
	if len(extra) == 0 || len(sort) != 1 || sort[0] != "-updatedAt" {
		return p, nil
	}
	for _, u := range extra {
		first, last := offset == 0, !p.HasNext
		switch {
		case len(p.Data) == 0:
		case first && !u.UpdatedAt.Before(p.Data[len(p.Data)-1].UpdatedAt):
		case last && u.UpdatedAt.Before(p.Data[0].UpdatedAt):
		default:
			continue
		}
		p.Data = append(p.Data, u)
	}
	slices.SortStableFunc(p.Data, func(a, b cipherscale.User) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	return p, nil
}

func (w *withExtraUsers) GetUser(ctx context.Context, id string) (*cipherscale.User, error) {
	for _, u := range w.extra.list() {
		if u.ID == id {
			return &u, nil
		}
	}
	return w.API.GetUser(ctx, id)
}

// DefaultTenantSecret is the Secret that holds the API key of the ClusterCipherscaleTenant
// "default" that CreateDefaultTenant makes.
var DefaultTenantSecret = types.NamespacedName{Namespace: "default", Name: "cipherscale-api-key"}

// TestURLPolicy is the operator's URL policy in tests: simulators on loopback over plain http.
var TestURLPolicy = cipherscale.URLPolicy{Hosts: []string{"127.0.0.1", "localhost"}, AllowInsecureHTTP: true}

// ManagerURLArgs are the manager's flags for the same policy, for harnesses that run the binary.
var ManagerURLArgs = []string{"--api-hosts=127.0.0.1,localhost", "--allow-insecure-http"}

// annotationAllowedTenants is the consent annotation a tenant's Secret carries: the tenants
// that may use it (iamv1alpha1.AnnotationAllowedTenants).
const annotationAllowedTenants = "cipherscale.com/allowed-tenants"

// DefaultTenant returns ClusterCipherscaleTenant "default", the tenant of every object without
// a tenantRef, for the API at url with its key in DefaultTenantSecret: usable from every
// namespace, and trusting none (no adoption, no privileged roles) until its spec says so.
func DefaultTenant(url string) *iamv1alpha1.ClusterCipherscaleTenant {
	return &iamv1alpha1.ClusterCipherscaleTenant{
		ObjectMeta: metav1.ObjectMeta{Name: tenant.DefaultName},
		Spec: iamv1alpha1.ClusterCipherscaleTenantSpec{
			APIKeySecretRef: iamv1alpha1.NamespacedSecretKeyReference{
				Namespace: DefaultTenantSecret.Namespace, Name: DefaultTenantSecret.Name, Key: "api-key"},
			NamespaceSelector: &metav1.LabelSelector{},
			TenantSettings:    iamv1alpha1.TenantSettings{URL: url},
		},
	}
}

// TenantSecret returns the Secret of the API key of the tenant kind/name ("ClusterCipherscaleTenant/default"),
// with the annotation that consents to its use by that tenant.
func TenantSecret(key types.NamespacedName, apiKey string, tenants ...string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Annotations: map[string]string{annotationAllowedTenants: strings.Join(tenants, ",")}},
		StringData: map[string]string{"api-key": apiKey},
	}
}

// CreateDefaultTenant creates DefaultTenantSecret with apiKey and ClusterCipherscaleTenant
// "default" for the API at url (DefaultTenant, then mutate), or updates them when they exist.
func (cp *ControlPlane) CreateDefaultTenant(ctx context.Context, url, apiKey string, mutate ...func(*iamv1alpha1.ClusterCipherscaleTenant)) error {
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultTenantSecret.Namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	secret := TenantSecret(DefaultTenantSecret, apiKey, iamv1alpha1.KindClusterCipherscaleTenant+"/"+tenant.DefaultName)
	err := cp.Client.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		err = cp.Client.Update(ctx, secret)
	}
	if err != nil {
		return err
	}
	t := DefaultTenant(url)
	for _, m := range mutate {
		m(t)
	}
	err = cp.Client.Create(ctx, t)
	if apierrors.IsAlreadyExists(err) {
		old := &iamv1alpha1.ClusterCipherscaleTenant{}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(t), old); err != nil {
			return err
		}
		old.Spec = t.Spec
		return cp.Client.Update(ctx, old)
	}
	return err
}

// TrustAll makes a tenant trust every namespace: adoption, privileged roles, Authoritative
// memberships.
func TrustAll(t *iamv1alpha1.ClusterCipherscaleTenant) {
	t.Spec.Adoption = &iamv1alpha1.AdoptionSpec{NamespaceSelector: &metav1.LabelSelector{}}
	t.Spec.Privileged = &iamv1alpha1.PrivilegedSpec{NamespaceSelector: &metav1.LabelSelector{}}
}

// TrustNamespaces returns a mutation that lets the named namespaces of a tenant adopt users,
// grant privileged roles and hold Authoritative memberships.
func TrustNamespaces(names ...string) func(*iamv1alpha1.ClusterCipherscaleTenant) {
	return func(t *iamv1alpha1.ClusterCipherscaleTenant) {
		sel := func() *metav1.LabelSelector {
			return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: names}}}
		}
		t.Spec.Adoption = &iamv1alpha1.AdoptionSpec{NamespaceSelector: sel()}
		t.Spec.Privileged = &iamv1alpha1.PrivilegedSpec{NamespaceSelector: sel()}
	}
}

// OperatorConfig is what RunOperator starts: the controllers' options, and the default tenant
// it creates.
type OperatorConfig struct {
	Options controller.Options
	// DefaultTenant is created before the operator starts (CreateDefaultTenant); nil: none.
	DefaultTenant func(*iamv1alpha1.ClusterCipherscaleTenant)
}

// RunOperator starts the simulator and the operator in this process until ctx is done, and
// creates ClusterCipherscaleTenant "default" for the simulator. The tenant's client is fast
// (500 requests a second) and retries briefly, so that tests are quick.
//
// The default tenant trusts every namespace (adoption, privileged roles, Authoritative
// memberships) and has no removal budget (the invitation cap is the CRD's default, 5 a day),
// unless configure changes them.
func RunOperator(ctx context.Context, cp *ControlPlane, apiKey string, resync time.Duration, workers int, configure ...func(*OperatorConfig)) (*InProcess, error) {
	sim := simulator.New(apiKey)
	srv := httptest.NewServer(sim)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 Scheme(),
		Cache:                  cache.Options{DefaultTransform: controller.CacheTransform()},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	extra := &extraUsers{}
	tenants := tenant.NewRegistry(tenant.RegistryOptions{
		ReadSecret:  controller.SecretReader(mgr.GetAPIReader()),
		ObserverFor: controller.TenantMetrics,
		MaxRetries:  3, RetryBudget: 5 * time.Second,
		BatchWindow: 10 * time.Millisecond,
		// The simulators of the tests serve plain http on loopback.
		URLPolicy: TestURLPolicy,
		Decorate: func(k tenant.Key, api cipherscale.API) cipherscale.API {
			if k != tenant.ClusterKey(tenant.DefaultName) {
				return api
			}
			return extra.wrap(api)
		},
	})
	cfg := OperatorConfig{
		Options: controller.Options{
			Tenants:                 tenants,
			ResyncInterval:          resync,
			MaxConcurrentReconciles: workers,
		},
		DefaultTenant: func(t *iamv1alpha1.ClusterCipherscaleTenant) {
			TrustAll(t)
			t.Spec.RequestsPerSecond = ptr(int32(500))
			t.Spec.Burst = ptr(int32(100))
			// No limit: the tests that need a budget set one.
			t.Spec.RemovalBudget = &iamv1alpha1.RemovalBudgetSpec{PerHour: ptr(int32(0))}
		},
	}
	for _, c := range configure {
		c(&cfg)
	}
	if cfg.DefaultTenant != nil {
		if err := cp.CreateDefaultTenant(ctx, srv.URL, apiKey, cfg.DefaultTenant); err != nil {
			return nil, fmt.Errorf("creating the default tenant: %w", err)
		}
	}
	if err := controller.Setup(ctx, mgr, cfg.Options); err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- mgr.Start(ctx) }()
	return &InProcess{Sim: sim, SimURL: srv.URL, Errors: errc, Tenants: cfg.Options.Tenants, extra: extra}, nil
}

func ptr[T any](v T) *T { return &v }
