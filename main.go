/*
Copyright 2026 The cipherscale-operator Authors.

Licensed under the Apache License, Version 2.0.
*/

// Command manager runs the cipherscale-operator: flags and wiring only.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/controller"
	"github.com/cipherscale/cipherscale-operator/internal/plan"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// version is set at build time.
var version = "dev"

// apiKeyEnv is the environment variable the API key is read from when no file is given.
const apiKeyEnv = "CIPHERSCALE_API_KEY"

type options struct {
	apiURL                string
	apiKeyFile            string
	allowInsecureHTTP     bool
	apiHosts              string
	resyncInterval        time.Duration
	qps                   float64
	burst                 int
	maxConcurrent         int
	batchWindow           time.Duration
	defaultDeletionPolicy string
	watchNamespaces       string
	metricsAddr           string
	metricsSecure         bool
	probeAddr             string
	leaderElect           bool
	leaderElectionNS      string
	maxTenantUsers        int
	maxTenantListMiB      int
	softMemoryLimitMiB    int
	removalBudget         int
	allowRemovalsFrom     string
	// The default tenant's undeclared users (it has no tenant object to set them in).
	undeclaredPolicy  string
	undeclaredExclude string
	undeclaredGrace   time.Duration
	// The trust rules of the default tenant.
	adoptionNamespaces   string
	privilegedNamespaces string
	privilegedRoles      string
	maxInvitationsPerDay int
}

func main() {
	var o options
	fs := flag.CommandLine
	fs.StringVar(&o.apiURL, "api-url", cipherscale.DefaultBaseURL, "Base URL of the Cipherscale API. HTTPS is required unless the host is a loopback address or --allow-insecure-http is set.")
	fs.StringVar(&o.apiKeyFile, "api-key-file", "", "File holding the API key (a mounted Secret); re-read when it changes. Without it the key is read from $"+apiKeyEnv+".")
	fs.BoolVar(&o.allowInsecureHTTP, "allow-insecure-http", false, "Allow plain-HTTP API URLs (loopback included) in tenant objects' spec.url, and a plain-HTTP --api-url on a non-loopback host.")
	fs.StringVar(&o.apiHosts, "api-hosts", cipherscale.DefaultAPIHost, "Comma-separated hosts a tenant object's spec.url may name (*.example.com matches its subdomains; an IP address only when listed). The operator connects nowhere else, so that whoever may write a tenant object cannot make it reach other addresses.")
	fs.DurationVar(&o.resyncInterval, "resync-interval", 10*time.Minute, "How often every object is compared with the tenant when nothing changed (jittered by 10%).")
	fs.Float64Var(&o.qps, "qps", cipherscale.DefaultQPS, "Requests per second to the Cipherscale API, shared by all reconciles.")
	fs.IntVar(&o.burst, "burst", cipherscale.DefaultBurst, "Burst of requests to the Cipherscale API above --qps.")
	fs.IntVar(&o.maxConcurrent, "max-concurrent-reconciles", 16, "Reconciles of each kind running at once. Keep it high enough that --qps, not the workers, sets the pace.")
	fs.DurationVar(&o.batchWindow, "create-batch-window", 50*time.Millisecond, "How long a user creation waits for others to share one API request (up to 100 users); while the tenant's other calls hold its rate limit, up to 40 windows, until they have been quiet for one.")
	fs.StringVar(&o.defaultDeletionPolicy, "default-deletion-policy", string(iamv1alpha1.DeletionPolicyDelete), "Deletion policy of CipherscaleUsers that set none: Delete, Deactivate or Orphan.")
	fs.StringVar(&o.watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to watch; empty watches all.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint, such as :8443; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica acts at a time.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election lease; defaults to the pod's namespace.")
	fs.IntVar(&o.maxTenantUsers, "max-tenant-users", cipherscale.DefaultMaxListUsers, "Most users one read of a tenant may hold; a longer list (or an API that never stops paginating) is refused, so that memory stays bounded.")
	fs.IntVar(&o.maxTenantListMiB, "max-tenant-list-mib", cipherscale.DefaultMaxListMemory>>20, "Most memory, in MiB and estimated, the users of one read of a tenant may take; past it the read is refused.")
	fs.IntVar(&o.softMemoryLimitMiB, "soft-memory-limit-mib", 80, "Soft memory limit of the Go runtime in MiB, below the container's limit: the garbage collector works harder near it instead of letting the heap double. The process's resident memory is this plus about 40 MiB of mapped binary. 0 keeps the runtime's default; $GOMEMLIMIT, when set, wins.")
	fs.IntVar(&o.removalBudget, "removal-budget", 25, "Delete or deactivate calls allowed against the tenant in any sliding hour; past it removals wait for a person (0: no limit).")
	fs.StringVar(&o.allowRemovalsFrom, "allow-removals-configmap", "", "NAMESPACE/NAME of a ConfigMap whose annotation "+iamv1alpha1.AnnotationAllowRemovals+"=<n> allows n more removals at once, once per value; the manager also keeps the default tenant's removals of the last hour there (annotation `+iamv1alpha1.AnnotationRemovalsByMinute+`), so that a restart does not start a fresh hour (it needs get and patch on it). Empty: only --removal-budget and time release waiting removals, and the budget is in memory only.")
	fs.StringVar(&o.undeclaredPolicy, "undeclared-users-policy", string(plan.UndeclaredIgnore), "What the operator does about the default tenant's users that no CipherscaleUser or membership declares: Ignore, Report (a log line and the metric cipherscale_undeclared_users), Deactivate or Delete (past --undeclared-grace-period, within the removal budget).")
	fs.StringVar(&o.undeclaredExclude, "undeclared-exclude", "", "Comma-separated addresses or patterns (*@partner.com) of the default tenant never deactivated or deleted as undeclared.")
	fs.DurationVar(&o.undeclaredGrace, "undeclared-grace-period", 24*time.Hour, "How long a user of the default tenant must have been undeclared before --undeclared-users-policy acts on them.")
	fs.StringVar(&o.adoptionNamespaces, "adoption-namespaces", "", "Comma-separated namespaces whose CipherscaleUsers may adopt tenant users the operator did not create; * for every namespace. Default: none.")
	fs.StringVar(&o.privilegedNamespaces, "privileged-namespaces", "", "Comma-separated namespaces whose objects may grant or remove privileged roles and be Authoritative memberships; * for every namespace. Default: none.")
	fs.StringVar(&o.privilegedRoles, "privileged-roles", "", "Comma-separated ids of the privileged roles. Default: the roles of type OWNER or ADMIN, and those whose type the operator cannot see.")
	fs.IntVar(&o.maxInvitationsPerDay, "max-invitations-per-day", 5, "Most invitations sent to one user in 24 hours, from any source (the create counts as one); 0 for no cap.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	setupLog := ctrl.Log.WithName("setup")

	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		setupLog.Error(err, "The manager stopped")
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// apiKey returns where the key comes from: the file when given, else the environment.
func apiKey(o options) (cipherscale.KeySource, error) {
	if o.apiKeyFile != "" {
		k, err := cipherscale.NewFileKey(o.apiKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--api-key-file: %w", err)
		}
		return k, nil
	}
	key := strings.TrimSpace(os.Getenv(apiKeyEnv))
	if key == "" {
		return nil, fmt.Errorf("no API key: set $%s or --api-key-file (a mounted Secret)", apiKeyEnv)
	}
	return cipherscale.StaticKey(key), nil
}

func validate(o options) error {
	var errs []error
	if _, err := cipherscale.ValidateBaseURL(o.apiURL, o.allowInsecureHTTP); err != nil {
		errs = append(errs, fmt.Errorf("--api-url: %w", err))
	}
	if _, err := cipherscale.ParseHosts(o.apiHosts); err != nil {
		errs = append(errs, fmt.Errorf("--api-hosts: %w", err))
	}
	if o.resyncInterval < time.Second {
		errs = append(errs, errors.New("--resync-interval must be at least 1s"))
	}
	if o.qps <= 0 || o.burst < 1 {
		errs = append(errs, errors.New("--qps must be positive and --burst at least 1"))
	}
	if o.maxConcurrent < 1 {
		errs = append(errs, errors.New("--max-concurrent-reconciles must be at least 1"))
	}
	if o.softMemoryLimitMiB < 0 {
		errs = append(errs, errors.New("--soft-memory-limit-mib must not be negative"))
	}
	if o.maxTenantUsers < 1 || o.maxTenantListMiB < 1 {
		errs = append(errs, errors.New("--max-tenant-users and --max-tenant-list-mib must be at least 1"))
	}
	if o.removalBudget < 0 {
		errs = append(errs, errors.New("--removal-budget must be 0 (no limit) or more"))
	}
	if _, err := namespacedName(o.allowRemovalsFrom); err != nil {
		errs = append(errs, fmt.Errorf("--allow-removals-configmap: %w", err))
	}
	if _, err := trustPolicy(o); err != nil {
		errs = append(errs, err)
	}
	if o.maxInvitationsPerDay < 0 || o.maxInvitationsPerDay > 100 {
		errs = append(errs, errors.New("--max-invitations-per-day must be between 0 and 100"))
	}
	switch iamv1alpha1.DeletionPolicy(o.defaultDeletionPolicy) {
	case iamv1alpha1.DeletionPolicyDelete, iamv1alpha1.DeletionPolicyDeactivate, iamv1alpha1.DeletionPolicyOrphan:
	default:
		errs = append(errs, fmt.Errorf("--default-deletion-policy must be Delete, Deactivate or Orphan, not %q", o.defaultDeletionPolicy))
	}
	if err := controller.ValidateUndeclaredPolicy(undeclaredPolicy(o)); err != nil {
		errs = append(errs, fmt.Errorf("--undeclared-users-policy, --undeclared-exclude, --undeclared-grace-period: %w", err))
	}
	return errors.Join(errs...)
}

// undeclaredPolicy is the default tenant's undeclared-users policy, from the flags.
func undeclaredPolicy(o options) controller.UndeclaredPolicy {
	return controller.UndeclaredPolicy{
		Policy: plan.UndeclaredPolicy(o.undeclaredPolicy), Exclude: splitList(o.undeclaredExclude),
		GracePeriod: o.undeclaredGrace,
	}
}

func run(ctx context.Context, o options) error {
	setupLog := ctrl.Log.WithName("setup")
	if err := validate(o); err != nil {
		return err
	}
	if o.softMemoryLimitMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(o.softMemoryLimitMiB) << 20)
	}
	key, err := apiKey(o)
	if err != nil {
		return err
	}
	api, err := cipherscale.New(cipherscale.Config{
		BaseURL:           o.apiURL,
		AllowInsecureHTTP: o.allowInsecureHTTP,
		Key:               key,
		QPS:               o.qps,
		Burst:             o.burst,
		UserAgent:         "cipherscale-operator/" + version,
		Observer:          controller.APIMetrics{Tenant: tenant.DefaultKey.String()},
		MaxListUsers:      o.maxTenantUsers,
		MaxListMemory:     int64(o.maxTenantListMiB) << 20,
	})
	if err != nil {
		return fmt.Errorf("configuring the Cipherscale client: %w", err)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(iamv1alpha1.AddToScheme(scheme))

	// managedFields and kubectl's last-applied-configuration are never read here; dropping them
	// and sharing repeated strings keeps the cache small (controller.CacheTransform).
	cacheOpts := cache.Options{DefaultTransform: controller.CacheTransform()}
	if ns := splitList(o.watchNamespaces); len(ns) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range ns {
			cacheOpts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.metricsSecure,
		// HTTP/2 is off: it is exposed to the HTTP/2 Stream Cancellation and Rapid Reset CVEs.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if o.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "cipherscale-operator.iam.cipherscale.com",
		LeaderElectionNamespace: o.leaderElectionNS,
		// The manager stops at once when it loses the lease, so no call is made twice.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	trust, err := trustPolicy(o)
	if err != nil {
		return err
	}
	allowFrom, _ := namespacedName(o.allowRemovalsFrom)
	apiHosts, _ := cipherscale.ParseHosts(o.apiHosts)
	// The tenants that ClusterCipherscaleTenant and CipherscaleTenant objects add share the
	// flags' settings; each has its own client and reads its key from its Secret, by name.
	tenants := tenant.NewRegistry(tenant.RegistryOptions{
		ReadSecret:  controller.SecretReader(mgr.GetAPIReader()),
		URLPolicy:   cipherscale.URLPolicy{Hosts: apiHosts, AllowInsecureHTTP: o.allowInsecureHTTP},
		ObserverFor: controller.TenantMetrics,
		UserAgent:   "cipherscale-operator/" + version,
		QPS:         o.qps,
		Burst:       o.burst,
		BatchWindow: o.batchWindow,
		// A slow tenant holds at most half of the workers; the other half serve the others.
		MaxPasses: max(1, o.maxConcurrent/2),
		// A tenant object without spec.removalBudget gets --removal-budget.
		RemovalBudget: o.removalBudget,
	})
	if err := controller.Setup(ctx, mgr, controller.Options{
		Tenants:               tenants,
		NamespacedTenantsOnly: len(splitList(o.watchNamespaces)) > 0,
		Tenant: tenant.New(api, tenant.Options{MaxAge: o.resyncInterval, BatchWindow: o.batchWindow,
			RemovalBudget: tenant.NewRemovalBudget(o.removalBudget, nil), Key: key}),
		Trust:                   trust,
		MaxInvitationsPerDay:    o.maxInvitationsPerDay,
		ResyncInterval:          o.resyncInterval,
		DefaultDeletionPolicy:   iamv1alpha1.DeletionPolicy(o.defaultDeletionPolicy),
		MaxConcurrentReconciles: o.maxConcurrent,
		AllowRemovalsConfigMap:  allowFrom,
	}); err != nil {
		return err
	}
	if p := undeclaredPolicy(o); p.Policy != plan.UndeclaredIgnore {
		if err := mgr.Add(&controller.DefaultUndeclared{
			Kube: mgr.GetClient(), Cache: mgr.GetCache(), Tenants: tenants, Policy: p, Interval: o.resyncInterval,
		}); err != nil {
			return fmt.Errorf("setting up the default tenant's undeclared users: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	setupLog.Info("Starting the manager", "version", version, "resyncInterval", o.resyncInterval.String(),
		"qps", o.qps, "burst", o.burst, "watchNamespaces", o.watchNamespaces, "removalBudget", o.removalBudget,
		"adoptionNamespaces", o.adoptionNamespaces, "privilegedNamespaces", o.privilegedNamespaces)
	return mgr.Start(ctx)
}

// namespacedName parses NAMESPACE/NAME; "" is the zero name.
func namespacedName(s string) (types.NamespacedName, error) {
	if s == "" {
		return types.NamespacedName{}, nil
	}
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("want NAMESPACE/NAME, not %q", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// trustPolicy reads the default tenant's trust rules from the flags.
func trustPolicy(o options) (plan.TrustPolicy, error) {
	var p plan.TrustPolicy
	var err error
	if p.Adoption, err = plan.ParseNamespaces(o.adoptionNamespaces); err != nil {
		return p, fmt.Errorf("--adoption-namespaces: %w", err)
	}
	if p.Privileged, err = plan.ParseNamespaces(o.privilegedNamespaces); err != nil {
		return p, fmt.Errorf("--privileged-namespaces: %w", err)
	}
	if roles := splitList(o.privilegedRoles); len(roles) > 0 {
		p.PrivilegedRoles = roles
	}
	return p, nil
}
