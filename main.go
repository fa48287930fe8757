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

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/cipherscale"
	"github.com/cipherscale/cipherscale-operator/internal/controller"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// version is set at build time.
var version = "dev"

// resyncInterval is how often every object is compared with its tenant when nothing changed
// (jittered by 10%), and how often a tenant whose spec sets no resyncInterval is read again.
const resyncInterval = 10 * time.Minute

// options are the manager's flags: process concerns only. Everything about a tenant (its URL,
// key, rate, trust, removal budget, undeclared users, deletion policy) is in its tenant object;
// objects without a tenantRef use ClusterCipherscaleTenant "default".
type options struct {
	allowInsecureHTTP  bool
	apiHosts           string
	maxConcurrent      int
	batchWindow        time.Duration
	watchNamespaces    string
	metricsAddr        string
	metricsSecure      bool
	probeAddr          string
	pprofAddr          string
	leaderElect        bool
	leaderElectionNS   string
	maxTenantUsers     int
	maxTenantListMiB   int
	softMemoryLimitMiB int
}

func main() {
	var o options
	fs := flag.CommandLine
	fs.BoolVar(&o.allowInsecureHTTP, "allow-insecure-http", false, "Allow plain-HTTP URLs (loopback included) in tenant objects' spec.url (a test tenant or a simulator only).")
	fs.StringVar(&o.apiHosts, "api-hosts", cipherscale.DefaultAPIHost, "Comma-separated hosts a tenant object's spec.url may name (*.example.com matches its subdomains; an IP address only when listed). The operator connects nowhere else, so that whoever may write a tenant object cannot make it reach other addresses.")
	fs.IntVar(&o.maxConcurrent, "max-concurrent-reconciles", 16, "Reconciles of each kind running at once. Keep it high enough that the tenants' rate limits, not the workers, set the pace.")
	fs.DurationVar(&o.batchWindow, "create-batch-window", 50*time.Millisecond, "How long a user creation waits for others to share one API request (up to 100 users); while the tenant's other calls hold its rate limit, up to 200 windows, until they have been quiet for one.")
	fs.StringVar(&o.watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to watch; empty watches all. ClusterCipherscaleTenants are read in either case.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint, such as :8443; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of Go's profiling endpoints (net/http/pprof), such as 127.0.0.1:8082, for a person investigating CPU or memory; empty disables them. They are served without authentication: bind them to loopback.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica acts at a time.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election lease; defaults to the pod's namespace.")
	fs.IntVar(&o.maxTenantUsers, "max-tenant-users", cipherscale.DefaultMaxListUsers, "Most users one read of a tenant may hold; a longer list (or an API that never stops paginating) is refused, so that memory stays bounded.")
	fs.IntVar(&o.maxTenantListMiB, "max-tenant-list-mib", cipherscale.DefaultMaxListMemory>>20, "Most memory, in MiB and estimated, the users of one read of a tenant may take beyond 2 KiB a user; past it the read is refused.")
	fs.IntVar(&o.softMemoryLimitMiB, "soft-memory-limit-mib", 80, "Soft memory limit of the Go runtime in MiB, below the container's limit: the garbage collector works harder near it instead of letting the heap double. The process's resident memory is this plus about 40 MiB of mapped binary. 0 keeps the runtime's default; $GOMEMLIMIT, when set, wins.")
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

func validate(o options) error {
	var errs []error
	if _, err := cipherscale.ParseHosts(o.apiHosts); err != nil {
		errs = append(errs, fmt.Errorf("--api-hosts: %w", err))
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
	return errors.Join(errs...)
}

func run(ctx context.Context, o options) error {
	setupLog := ctrl.Log.WithName("setup")
	if err := validate(o); err != nil {
		return err
	}
	if o.softMemoryLimitMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(o.softMemoryLimitMiB) << 20)
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
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "cipherscale-operator.iam.cipherscale.com",
		LeaderElectionNamespace: o.leaderElectionNS,
		// The manager stops at once when it loses the lease, so no call is made twice.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	// An operator that may not write ClusterCipherscaleTenants (the chart's RBAC when it watches
	// only some namespaces) uses them without writing them.
	readOnly, err := mayNotWriteClusterTenants(ctx, mgr.GetConfig())
	if err != nil {
		return err
	}
	if readOnly {
		setupLog.Info("The operator may only read ClusterCipherscaleTenants: it uses them without writing their finalizer or status, and keeps their removal budget's hour in memory")
	}
	apiHosts, _ := cipherscale.ParseHosts(o.apiHosts)
	// Each tenant object gets its own client, rate limit and snapshot, and reads its key from
	// its Secret, by name.
	tenants := tenant.NewRegistry(tenant.RegistryOptions{
		ReadSecret:    controller.SecretReader(mgr.GetAPIReader()),
		URLPolicy:     cipherscale.URLPolicy{Hosts: apiHosts, AllowInsecureHTTP: o.allowInsecureHTTP},
		ObserverFor:   controller.TenantMetrics,
		UserAgent:     "cipherscale-operator/" + version,
		BatchWindow:   o.batchWindow,
		MaxListUsers:  o.maxTenantUsers,
		MaxListMemory: int64(o.maxTenantListMiB) << 20,
		// A slow tenant holds at most half of the workers; the other half serve the others.
		MaxPasses: max(1, o.maxConcurrent/2),
	})
	if err := controller.Setup(ctx, mgr, controller.Options{
		Tenants:                 tenants,
		ResyncInterval:          resyncInterval,
		MaxConcurrentReconciles: o.maxConcurrent,
		ReadOnlyClusterTenants:  readOnly,
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	setupLog.Info("Starting the manager", "version", version, "watchNamespaces", o.watchNamespaces,
		"defaultTenant", tenant.ClusterKey(tenant.DefaultName).String())
	return mgr.Start(ctx)
}

// mayNotWriteClusterTenants asks the API server whether the operator may update the status of
// ClusterCipherscaleTenants (a SelfSubjectAccessReview, which anyone may create).
func mayNotWriteClusterTenants(ctx context.Context, cfg *rest.Config) (bool, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return false, fmt.Errorf("checking the operator's rights: %w", err)
	}
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group: iamv1alpha1.GroupVersion.Group, Resource: "clustercipherscaletenants", Subresource: "status", Verb: "update",
		},
	}}
	if err := c.Create(ctx, review); err != nil {
		return false, fmt.Errorf("checking the operator's rights on ClusterCipherscaleTenants: %w", err)
	}
	return !review.Status.Allowed, nil
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
