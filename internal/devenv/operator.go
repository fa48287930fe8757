package devenv

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale/simulator"
	"github.com/cipherscale/cipherscale-operator/internal/controller"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
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

// BuildBinaries builds the manager and the simulator into dir with the flags of `make build`,
// and returns their paths by name ("manager", "cipherscale-sim").
func BuildBinaries(root, dir string) (map[string]string, error) {
	bins := map[string]string{}
	for name, pkg := range map[string]string{"manager": ".", "cipherscale-sim": "./hack/cipherscale-sim"} {
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
	if err := cp.Client.Create(ctx, &role); err != nil {
		return err
	}
	return cp.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	})
}

// InProcess is the operator running in this process, wired as main.go wires it, against the
// control plane and an in-memory simulator served over HTTP.
type InProcess struct {
	Sim    *simulator.Server
	SimURL string
	// Errors receives the manager's error when it stops.
	Errors <-chan error
	// Tenant is the operator's view of the tenant (its removal budget among others).
	Tenant *tenant.Tenant

	extra *extraUsers
}

// ListAlso makes the operator's reads of the tenant (the list, and reads by id) return u as well,
// as a tenant the simulator cannot model would: the simulator refuses, as the contract says
// the service does, a second user whose email differs only in case from another's.
func (p *InProcess) ListAlso(u cipherscale.User) { p.extra.add(u) }

// extraUsers is the operator's client with users added to what the tenant answers.
type extraUsers struct {
	cipherscale.API
	mu    sync.Mutex
	users []cipherscale.User
}

func (e *extraUsers) add(u cipherscale.User) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users = append(e.users, u)
}

func (e *extraUsers) ListUsers(ctx context.Context) ([]cipherscale.User, error) {
	users, err := e.API.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append(users, e.users...), nil
}

func (e *extraUsers) GetUser(ctx context.Context, id string) (*cipherscale.User, error) {
	e.mu.Lock()
	for _, u := range e.users {
		if u.ID == id {
			e.mu.Unlock()
			return &u, nil
		}
	}
	e.mu.Unlock()
	return e.API.GetUser(ctx, id)
}

// TestURLPolicy is the operator's URL policy in tests: simulators on loopback over plain http.
var TestURLPolicy = cipherscale.URLPolicy{Hosts: []string{"127.0.0.1", "localhost"}, AllowInsecureHTTP: true}

// ManagerURLArgs are the manager's flags for the same policy, for harnesses that run the binary.
var ManagerURLArgs = []string{"--api-hosts=127.0.0.1,localhost", "--allow-insecure-http"}

// AllowRemovalsConfigMap is the ConfigMap whose allow-removals annotation releases the removal
// budget of the operator RunOperator starts.
var AllowRemovalsConfigMap = types.NamespacedName{Namespace: "default", Name: "cipherscale-removals"}

// RunOperator starts the simulator and the operator in this process until ctx is done. The
// client is fast (QPS 500) and retries briefly, so that tests are quick.
//
// The operator trusts every namespace (adoption, privileged roles, Authoritative memberships)
// and caps invitations at 5 a day, unless configure changes its options.
func RunOperator(ctx context.Context, cp *ControlPlane, apiKey string, resync time.Duration, workers int, configure ...func(*controller.Options)) (*InProcess, error) {
	sim := simulator.New(apiKey)
	srv := httptest.NewServer(sim)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	client, err := cipherscale.New(cipherscale.Config{
		BaseURL: srv.URL, Key: cipherscale.StaticKey(apiKey), QPS: 500, Burst: 100,
		MaxRetries: 3, RetryBudget: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	api := &extraUsers{API: client}
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:                 Scheme(),
		Cache:                  cache.Options{DefaultTransform: controller.CacheTransform()},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	t := tenant.New(api, tenant.Options{MaxAge: resync, BatchWindow: 10 * time.Millisecond, Key: cipherscale.StaticKey(apiKey)})
	opts := controller.Options{
		Tenant:                  t,
		ResyncInterval:          resync,
		DefaultDeletionPolicy:   iamv1alpha1.DeletionPolicyDelete,
		MaxConcurrentReconciles: workers,
		AllowRemovalsConfigMap:  AllowRemovalsConfigMap,
		AllowRemovalsPoll:       100 * time.Millisecond,
		Trust:                   plan.AllowAll(),
		MaxInvitationsPerDay:    5,
		// The simulators of the tests serve plain http on loopback.
		URLPolicy: TestURLPolicy,
	}
	for _, c := range configure {
		c(&opts)
	}
	if err := controller.Setup(ctx, mgr, opts); err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- mgr.Start(ctx) }()
	return &InProcess{Sim: sim, SimURL: srv.URL, Errors: errc, Tenant: t, extra: api}, nil
}
