// Command dashboard-rules writes the queries of a Grafana dashboard as a Prometheus rules file
// (one recording rule per query, Grafana's variables replaced), so that `promtool check rules`
// parses every query as PromQL: make test-rules runs it on the chart's dashboard.
//
//	go run ./hack/dashboard-rules charts/cipherscale-operator/files/dashboard.json > rules.yaml
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/cipherscale/cipherscale-operator/internal/monitoring"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-rules DASHBOARD.json")
		os.Exit(2)
	}
	exprs, err := monitoring.DashboardExprs(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	type rule struct {
		Record string            `json:"record"`
		Expr   string            `json:"expr"`
		Labels map[string]string `json:"labels"`
	}
	rules := make([]rule, 0, len(exprs))
	for i, e := range exprs {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard_query_%d", i+1), Expr: e.PromQL, Labels: map[string]string{"source": e.Source}})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
