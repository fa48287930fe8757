// Package monitoring reads the PromQL of the chart's alert rules (files/alerts.yaml) and
// Grafana dashboard (files/dashboard.json): the expressions, and the metric names and label
// names each one uses. The end-to-end suite checks those names against a running manager's
// /metrics; hack/dashboard-rules turns the dashboard's queries into a rules file that promtool
// checks (the parse itself is promtool's).
package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Expr is one PromQL expression and where it comes from.
type Expr struct {
	// Source names it: an alert's name, or a dashboard panel's title and refId.
	Source string
	// PromQL is the expression, Grafana's variables replaced by values (see Substitute).
	PromQL string
}

// RuleExprs returns the expression of every rule of a Prometheus rules file.
func RuleExprs(path string) ([]Expr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Expr
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			out = append(out, Expr{Source: name, PromQL: r.Expr})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no rules", path)
	}
	return out, nil
}

// DashboardExprs returns the query of every panel target (rows' nested panels included) and of
// every query variable of a Grafana dashboard, with Substitute applied.
func DashboardExprs(path string) ([]Expr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Expr
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) != "" {
					out = append(out, Expr{Source: p.Title + " " + t.RefID, PromQL: Substitute(t.Expr)})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				return nil, fmt.Errorf("%s: variable %s: %w", path, v.Name, err)
			}
			q.Query = s
		}
		// label_values(METRIC, LABEL) is Grafana's, not PromQL: it reads METRIC's LABEL.
		lv := strings.TrimSpace(q.Query)
		if rest, ok := strings.CutPrefix(lv, "label_values("); ok {
			args := strings.Split(strings.TrimSuffix(rest, ")"), ",")
			if len(args) != 2 {
				return nil, fmt.Errorf("%s: variable %s: label_values needs a metric and a label: %q", path, v.Name, lv)
			}
			lv = "count by (" + strings.TrimSpace(args[1]) + ") (" + Substitute(strings.TrimSpace(args[0])) + ")"
		}
		out = append(out, Expr{Source: "variable " + v.Name, PromQL: lv})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return out, nil
}

// Substitute replaces the Grafana variables a dashboard query may hold with values that keep it
// valid PromQL: intervals by 5m, other variables by "x".
func Substitute(q string) string {
	r := strings.NewReplacer(
		"$__rate_interval", "5m", "${__rate_interval}", "5m",
		"$__interval", "5m", "${__interval}", "5m",
		"$__range", "1h", "${__range}", "1h",
	)
	q = r.Replace(q)
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] != '$' {
			b.WriteByte(q[i])
			continue
		}
		j := i + 1
		if j < len(q) && q[j] == '{' {
			end := strings.IndexByte(q[j:], '}')
			if end < 0 {
				b.WriteString(q[i:])
				break
			}
			i = j + end
		} else {
			for j < len(q) && isIdent(q[j], false) {
				j++
			}
			i = j - 1
		}
		b.WriteString("x")
	}
	return b.String()
}

// Use is what one expression uses: metric names, and label names (of matchers, by, without, on,
// ignoring, group_left and group_right).
type Use struct {
	Metrics []string
	Labels  []string
}

var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
	"start": true, "end": true, "atan2": true,
	// aggregations, which may be followed by by (...) before their parenthesis
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

var grouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// Uses returns the metric names and label names expr uses, each sorted and once. It is a
// tokenizer, not a parser: promtool checks that the expression parses.
func Uses(expr string) (Use, error) {
	metrics, labels := map[string]bool{}, map[string]bool{}
	s := expr
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	readString := func() error {
		q := s[i]
		i++
		for i < len(s) && s[i] != q {
			if s[i] == '\\' && q != '`' {
				i++
			}
			i++
		}
		if i >= len(s) {
			return fmt.Errorf("unterminated string in %q", expr)
		}
		i++
		return nil
	}
	readIdent := func() string {
		start := i
		for i < len(s) && isIdent(s[i], i > start) {
			i++
		}
		return s[start:i]
	}
	// readList reads (a, b, c) after a grouping keyword.
	readList := func() error {
		i++ // (
		for {
			skipSpace()
			if i >= len(s) {
				return fmt.Errorf("unterminated label list in %q", expr)
			}
			if s[i] == ')' {
				i++
				return nil
			}
			if s[i] == ',' {
				i++
				continue
			}
			l := readIdent()
			if l == "" {
				return fmt.Errorf("unexpected %q in a label list of %q", s[i], expr)
			}
			labels[l] = true
		}
	}
	// readMatchers reads {l="v", l2=~"v"}.
	readMatchers := func() error {
		i++ // {
		for {
			skipSpace()
			if i >= len(s) {
				return fmt.Errorf("unterminated selector in %q", expr)
			}
			switch s[i] {
			case '}':
				i++
				return nil
			case ',', '=', '!', '~':
				i++
			case '"', '\'', '`':
				if err := readString(); err != nil {
					return err
				}
			default:
				l := readIdent()
				if l == "" {
					return fmt.Errorf("unexpected %q in a selector of %q", s[i], expr)
				}
				if l == "__name__" {
					return fmt.Errorf("%q: select metrics by name, not __name__", expr)
				}
				labels[l] = true
			}
		}
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := readString(); err != nil {
				return Use{}, err
			}
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return Use{}, fmt.Errorf("unterminated range in %q", expr)
			}
			i += end + 1
		case c == '{':
			return Use{}, fmt.Errorf("%q: a selector without a metric name", expr)
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i], true) || s[i] == '.') {
				i++
			}
		case isIdent(c, false):
			id := readIdent()
			skipSpace()
			next := byte(0)
			if i < len(s) {
				next = s[i]
			}
			switch {
			case grouping[id]:
				if next == '(' {
					if err := readList(); err != nil {
						return Use{}, err
					}
				}
			case keywords[id]:
			case next == '(':
				// a function or an aggregation
			default:
				metrics[id] = true
				if next == '{' {
					if err := readMatchers(); err != nil {
						return Use{}, err
					}
				}
			}
		default:
			i++
		}
	}
	return Use{Metrics: sortedKeys(metrics), Labels: sortedKeys(labels)}, nil
}

func isIdent(c byte, notFirst bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || notFirst && c >= '0' && c <= '9'
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
