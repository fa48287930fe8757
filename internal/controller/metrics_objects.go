package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/prometheus/client_golang/prometheus"

	iamv1alpha1 "github.com/cipherscale/cipherscale-operator/api/v1alpha1"
	"github.com/cipherscale/cipherscale-operator/internal/tenant"
)

// The metrics of objectMetrics: computed at each scrape from the manager's cache (and the
// tenant registry), so that they never drift from the objects and a deleted object or tenant
// has no series. Only the leader exports them, like the gauges its reconcilers set.
var (
	objectsDesc = prometheus.NewDesc("cipherscale_objects",
		"CipherscaleUsers and CipherscaleGroupMemberships by tenant, kind and kstatus condition (Ready, Reconciling or Stalled) with its reason.",
		[]string{"tenant", "kind", "condition", "reason"}, nil)
	tenantConditionDesc = prometheus.NewDesc("cipherscale_tenant_condition",
		"1 for each tenant object, labeled with its kstatus condition (Ready, Reconciling or Stalled) and that condition's reason.",
		[]string{"tenant", "condition", "reason"}, nil)
	budgetPerHourDesc = prometheus.NewDesc("cipherscale_removal_budget_per_hour",
		"The removal budget in force of each tenant object: removals allowed in any sliding hour (0: no limit).",
		[]string{"tenant"}, nil)
	removalsSpentDesc = prometheus.NewDesc("cipherscale_removals_spent",
		"Removals (deletes and deactivations) the tenant's budget counted in the last hour.",
		[]string{"tenant"}, nil)
	undeclaredPolicyDesc = prometheus.NewDesc("cipherscale_undeclared_users_policy",
		"1 for each tenant object, labeled with its spec.undeclaredUsers.policy (Ignore, Report, Deactivate or Delete).",
		[]string{"tenant", "policy"}, nil)
	rateLimitDesc = prometheus.NewDesc("cipherscale_api_rate_limit",
		"The rate limit of each tenant's API client, in requests per second.",
		[]string{"tenant"}, nil)
)

// Values of the condition label.
const (
	summaryReady       = "Ready"
	summaryReconciling = "Reconciling"
	summaryStalled     = "Stalled"
)

// noTenant is the tenant label of objects that name a tenant object that does not exist: any
// namespace can name any tenant, and the label must not grow with made-up names.
const noTenant = "none"

// objectMetrics is the one collector of these metrics, registered once; Setup points it at
// its manager.
var objectMetrics = &objectCollector{}

func init() {
	metrics.Registry.MustRegister(objectMetrics)
}

// objectCollector is a prometheus.Collector over the manager's cache.
type objectCollector struct {
	mu      sync.Mutex
	reader  client.Reader
	tenants *tenant.Registry
	elected <-chan struct{}
	// noClusterTenants: the manager serves no ClusterCipherscaleTenant (and may not list them).
	noClusterTenants bool
}

// set points the collector at a manager's cache, its tenants and its leader election.
func (c *objectCollector) set(reader client.Reader, tenants *tenant.Registry, elected <-chan struct{}, noClusterTenants bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reader, c.tenants, c.elected, c.noClusterTenants = reader, tenants, elected, noClusterTenants
}

// Describe sends the descriptors.
func (c *objectCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{objectsDesc, tenantConditionDesc, budgetPerHourDesc, removalsSpentDesc, undeclaredPolicyDesc, rateLimitDesc} {
		ch <- d
	}
}

// scrapeTimeout bounds the cache reads of one scrape (a cache that is not synced yet waits).
const scrapeTimeout = 5 * time.Second

// Collect sends the metrics of the objects in the cache. A process that is not the leader, or
// whose cache cannot be read, sends none.
func (c *objectCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	reader, tenants, elected, noClusterTenants := c.reader, c.tenants, c.elected, c.noClusterTenants
	c.mu.Unlock()
	if reader == nil {
		return
	}
	select {
	case <-elected:
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	snap, err := readObjectMetrics(ctx, reader, noClusterTenants)
	if err != nil {
		return
	}
	for k, n := range snap.objects {
		ch <- prometheus.MustNewConstMetric(objectsDesc, prometheus.GaugeValue, float64(n), k.tenant, k.kind, k.condition, k.reason)
	}
	for _, t := range snap.tenants {
		ch <- prometheus.MustNewConstMetric(tenantConditionDesc, prometheus.GaugeValue, 1, t.key, t.condition, t.reason)
		ch <- prometheus.MustNewConstMetric(undeclaredPolicyDesc, prometheus.GaugeValue, 1, t.key, t.policy)
		if t.budget != nil {
			ch <- prometheus.MustNewConstMetric(budgetPerHourDesc, prometheus.GaugeValue, float64(t.budget.PerHour), t.key)
			ch <- prometheus.MustNewConstMetric(removalsSpentDesc, prometheus.GaugeValue, float64(t.budget.Spent), t.key)
		}
	}
	if tenants != nil {
		for _, k := range tenants.Keys() {
			t, ok := tenants.Get(k)
			if !ok {
				continue
			}
			if qps, ok := t.RateLimit(); ok {
				ch <- prometheus.MustNewConstMetric(rateLimitDesc, prometheus.GaugeValue, qps, tenantLabel(k))
			}
		}
	}
}

// objectKey is the labels of one cipherscale_objects series.
type objectKey struct{ tenant, kind, condition, reason string }

// tenantSummary is one tenant object's series.
type tenantSummary struct {
	key, condition, reason, policy string
	budget                         *iamv1alpha1.TenantRemovalBudgetStatus
}

// objectSnapshot is what one scrape read.
type objectSnapshot struct {
	objects map[objectKey]int
	tenants []tenantSummary
}

// readObjectMetrics reads the tenant objects, CipherscaleUsers and memberships (read only: the
// cache's objects are not copied).
func readObjectMetrics(ctx context.Context, r client.Reader, noClusterTenants bool) (objectSnapshot, error) {
	snap := objectSnapshot{objects: map[objectKey]int{}}
	known := map[tenant.Key]bool{}
	var ccts iamv1alpha1.ClusterCipherscaleTenantList
	// With noClusterTenants they are not listed: the cache would start an informer that the
	// manager's RBAC does not allow, and wait for it.
	if !noClusterTenants {
		if err := r.List(ctx, &ccts, client.UnsafeDisableDeepCopy); err != nil && !meta.IsNoMatchError(err) {
			return snap, err
		}
	}
	for i := range ccts.Items {
		t := &ccts.Items[i]
		k := tenant.ClusterKey(t.Name)
		known[k] = true
		snap.tenants = append(snap.tenants, summarizeTenant(k, t.Settings(), &t.Status))
	}
	var csts iamv1alpha1.CipherscaleTenantList
	if err := r.List(ctx, &csts, client.UnsafeDisableDeepCopy); err != nil && !meta.IsNoMatchError(err) {
		return snap, err
	}
	for i := range csts.Items {
		t := &csts.Items[i]
		k := tenant.NamespacedKey(t.Namespace, t.Name)
		known[k] = true
		snap.tenants = append(snap.tenants, summarizeTenant(k, t.Settings(), &t.Status))
	}
	label := func(namespace string, ref *iamv1alpha1.TenantReference) string {
		k := tenantKeyOf(namespace, ref)
		if !known[k] {
			return noTenant
		}
		return tenantLabel(k)
	}
	var users iamv1alpha1.CipherscaleUserList
	if err := r.List(ctx, &users, client.UnsafeDisableDeepCopy); err != nil {
		return snap, err
	}
	for i := range users.Items {
		u := &users.Items[i]
		cond, reason := summarize(u.Status.Conditions)
		snap.objects[objectKey{label(u.Namespace, u.Spec.TenantRef), "CipherscaleUser", cond, reason}]++
	}
	var ms iamv1alpha1.CipherscaleGroupMembershipList
	if err := r.List(ctx, &ms, client.UnsafeDisableDeepCopy); err != nil {
		return snap, err
	}
	for i := range ms.Items {
		m := &ms.Items[i]
		cond, reason := summarize(m.Status.Conditions)
		snap.objects[objectKey{label(m.Namespace, m.Spec.TenantRef), "CipherscaleGroupMembership", cond, reason}]++
	}
	return snap, nil
}

// tenantLabel is the tenant label of the tenant with this key, as the other metrics write it.
func tenantLabel(k tenant.Key) string { return k.String() }

func summarizeTenant(k tenant.Key, spec *iamv1alpha1.TenantSettings, st *iamv1alpha1.TenantStatus) tenantSummary {
	cond, reason := summarize(st.Conditions)
	policy := iamv1alpha1.UndeclaredUsersIgnore
	if spec.UndeclaredUsers != nil && spec.UndeclaredUsers.Policy != "" {
		policy = spec.UndeclaredUsers.Policy
	}
	return tenantSummary{key: k.String(), condition: cond, reason: reason, policy: string(policy), budget: st.RemovalBudget}
}

// summarize returns an object's kstatus state: Stalled when Stalled is True, Ready when Ready is
// True, else Reconciling; and the reason of that condition (of Ready when Reconciling is not
// set; "Unknown" when the object has no conditions yet).
func summarize(cs []metav1.Condition) (condition, reason string) {
	if c := meta.FindStatusCondition(cs, iamv1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		return summaryStalled, reasonOr(c.Reason)
	}
	ready := meta.FindStatusCondition(cs, iamv1alpha1.ConditionReady)
	if ready != nil && ready.Status == metav1.ConditionTrue {
		return summaryReady, reasonOr(ready.Reason)
	}
	if c := meta.FindStatusCondition(cs, iamv1alpha1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		return summaryReconciling, reasonOr(c.Reason)
	}
	if ready != nil {
		return summaryReconciling, reasonOr(ready.Reason)
	}
	return summaryReconciling, "Unknown"
}

func reasonOr(r string) string {
	if r == "" {
		return "Unknown"
	}
	return r
}
