package monitoring

import (
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

func TestUses(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want Use
	}{
		{`max by (tenant) (cipherscale_removals_waiting) > 0`,
			Use{Metrics: []string{"cipherscale_removals_waiting"}, Labels: []string{"tenant"}}},
		{`sum by (tenant) (rate(cipherscale_api_requests_total{code=~"5..|0"}[5m])) / sum by (tenant) (rate(cipherscale_api_requests_total[5m])) > 0.1`,
			Use{Metrics: []string{"cipherscale_api_requests_total"}, Labels: []string{"code", "tenant"}}},
		{"(max by (tenant) (a_metric) > 0)\n  and on (tenant) (max by(tenant)(b:rec{policy=\"Report\", x!='y'}) == 1)",
			Use{Metrics: []string{"a_metric", "b:rec"}, Labels: []string{"policy", "tenant", "x"}}},
		{`histogram_quantile(0.99, sum(rate(h_bucket{route="GET /x{id}"}[5m] offset 1h)) without (pod, instance))`,
			Use{Metrics: []string{"h_bucket"}, Labels: []string{"instance", "pod", "route"}}},
		{`m1 * on (a) group_left (b) m2`,
			Use{Metrics: []string{"m1", "m2"}, Labels: []string{"a", "b"}}},
	} {
		got, err := Uses(tc.expr)
		if err != nil {
			t.Fatalf("Uses(%q): %v", tc.expr, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Uses(%q) = %+v, want %+v", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`{__name__="x"}`, `x{a="b"`, `x{__name__="y"}`, `rate(x[5m)`} {
		if _, err := Uses(bad); err == nil {
			t.Errorf("Uses(%q): no error", bad)
		}
	}
}

func TestSubstitute(t *testing.T) {
	got := Substitute(`sum(rate(m{tenant=~"$tenant", x="${var}"}[$__rate_interval])) + increase(m[$__range])`)
	want := `sum(rate(m{tenant=~"x", x="x"}[5m])) + increase(m[1h])`
	if got != want {
		t.Errorf("Substitute = %q, want %q", got, want)
	}
}

// The chart's files read, every expression understood.
func TestChartFiles(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	files := filepath.Join(filepath.Dir(file), "..", "..", "charts", "cipherscale-operator", "files")
	rules, err := RuleExprs(filepath.Join(files, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dash, err := DashboardExprs(filepath.Join(files, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) < 8 || len(dash) < 15 {
		t.Fatalf("%d rules and %d dashboard queries: too few read", len(rules), len(dash))
	}
	for _, e := range append(rules, dash...) {
		u, err := Uses(e.PromQL)
		if err != nil {
			t.Errorf("%s: %v", e.Source, err)
			continue
		}
		if len(u.Metrics) == 0 {
			t.Errorf("%s: %q uses no metric", e.Source, e.PromQL)
		}
	}
}
