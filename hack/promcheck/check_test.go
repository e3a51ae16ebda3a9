package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// testdata/metrics.txt is the output of `mcp-authz metrics --config
// dev/mcp-authz.yaml`; make monitoring-check uses the binary's own.
func testCatalog(t *testing.T) *catalog {
	t.Helper()
	f, err := os.Open("testdata/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := readCatalog(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantErrs fails unless errs is empty (want "") or one of them contains want.
func wantErrs(t *testing.T, errs []error, want string) {
	t.Helper()
	switch {
	case want == "" && len(errs) > 0:
		t.Errorf("want no error, got:\n%v", errors.Join(errs...))
	case want != "" && !strings.Contains(errors.Join(errs...).Error()+" ", want):
		t.Errorf("want an error containing %q, got:\n%v", want, errors.Join(errs...))
	}
}

func TestCheckExpr(t *testing.T) {
	c := testCatalog(t)
	tests := []struct {
		name, expr, want string
	}{
		{name: "counter rate by its label", expr: `sum by (reason) (rate(mcp_authz_decisions_total{decision="deny"}[5m]))`},
		{name: "histogram quantile", expr: `histogram_quantile(0.99, sum by (namespace, le) (rate(mcp_authz_check_duration_seconds_bucket[5m]))) > 0.25`},
		{name: "histogram count", expr: `rate(mcp_authz_check_duration_seconds_count[5m])`},
		{name: "summary quantile label", expr: `go_gc_duration_seconds{quantile="0.5"}`},
		{name: "target labels", expr: `up{job="mcp-authz", namespace="x", pod!=""} == 0`},
		{name: "name matcher", expr: `{__name__="mcp_authz_router_streams"}`},
		{name: "ratio on", expr: `sum by (namespace) (rate(mcp_authz_decisions_total[5m])) / on (namespace) sum by (namespace) (rate(mcp_authz_decisions_total[5m]))`},
		{name: "and keeps left labels", expr: `sum by (reason) (rate(mcp_authz_decisions_total[5m])) > 1 and on (reason) sum by (reason) (rate(mcp_authz_decisions_total[1d])) > 0`},
		{name: "unknown metric", expr: `rate(mcp_authz_decisions[5m])`, want: "mcp_authz_decisions is not a metric the binary exports"},
		{name: "unknown metric in a binary expression", expr: `sum(mcp_authz_router_streams) / sum(mcp_authz_router_lists_truncated_total)`, want: "mcp_authz_router_lists_truncated_total is not a metric"},
		{name: "bare histogram", expr: `mcp_authz_check_duration_seconds`, want: "is a histogram: select"},
		{name: "bucket of a counter", expr: `mcp_authz_router_sessions_total_bucket`, want: "is a counter, which has no _bucket"},
		{name: "bucket of a vector of unknown type", expr: `mcp_authz_decisions_total_bucket`, want: "type is unknown"},
		{name: "summary has no bucket", expr: `go_gc_duration_seconds_bucket`, want: "is a summary, which has no _bucket"},
		{name: "label it does not have", expr: `mcp_authz_router_upstream_failures_total{operation="call"}`, want: `has no label "operation"`},
		{name: "le on a counter", expr: `mcp_authz_decisions_total{le="1"}`, want: `has no label "le"`},
		{name: "group by a label it does not have", expr: `sum by (operation) (rate(mcp_authz_router_upstream_failures_total[5m]))`, want: `does not carry label "operation"`},
		{name: "group by a label aggregated away", expr: `sum by (server) (sum by (op) (rate(mcp_authz_router_upstream_failures_total[5m])))`, want: `does not carry label "server"`},
		{name: "quantile without le", expr: `histogram_quantile(0.99, sum by (namespace) (rate(mcp_authz_check_duration_seconds_bucket[5m])))`, want: "has no le label"},
		{name: "selector without a name", expr: `{job="mcp-authz"}`, want: "must name one metric"},
		{name: "name by regex", expr: `{__name__=~"mcp_authz_.*"}`, want: "must name one metric"},
		{name: "parse error", expr: `sum(rate(mcp_authz_decisions_total[5m])`, want: "parse:"},
		{name: "unknown function", expr: `ratez(mcp_authz_decisions_total[5m])`, want: "parse:"},
		{name: "experimental function", expr: `sort_by_label(mcp_authz_router_streams, "pod")`, want: "parse:"},
		{name: "grafana variable left", expr: `rate(mcp_authz_decisions_total[$window])`, want: "parse:"},
		{name: "empty", expr: " ", want: "empty expression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrs(t, c.checkExpr(tt.expr), tt.want)
		})
	}
}

func TestReadCatalog(t *testing.T) {
	tests := []struct {
		name, list, want string
	}{
		{name: "ok", list: "a_total\tcounter\tx,y\thelp\n"},
		{name: "empty", list: "", want: "empty"},
		{name: "three fields", list: "a_total\tcounter\tx\n", want: "tab-separated"},
		{name: "bad type", list: "a\tcounterz\t\thelp\n", want: "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readCatalog(strings.NewReader(tt.list))
			var errs []error
			if err != nil {
				errs = append(errs, err)
			}
			wantErrs(t, errs, tt.want)
		})
	}
}

const shipped = "../../manifests/monitoring"

func readShipped(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shipped, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCheckPrometheusRule checks the shipped rules, then breaks them one
// way at a time.
func TestCheckPrometheusRule(t *testing.T) {
	c := testCatalog(t)
	rules := readShipped(t, "prometheusrule.yaml")
	edit := func(old, new string) string {
		t.Helper()
		if !strings.Contains(rules, old) {
			t.Fatalf("prometheusrule.yaml has no %q", old)
		}
		return strings.Replace(rules, old, new, 1)
	}
	tests := []struct {
		name, rules, want string
	}{
		{name: "shipped", rules: rules},
		{name: "kind", rules: edit("kind: PrometheusRule", "kind: PrometheusRules"), want: "kind"},
		{name: "apiVersion", rules: edit("monitoring.coreos.com/v1", "monitoring.coreos.com/v1beta1"), want: "apiVersion"},
		{name: "unknown field", rules: edit("          for: 5m\n", "          for: 5m\n          severity: critical\n"), want: "unknown field"},
		{name: "no for", rules: edit("          for: 5m\n", ""), want: "alert MCPAuthzDown: no for"},
		{name: "severity", rules: edit("severity: critical", "severity: page"), want: `labels.severity "page"`},
		{name: "no severity", rules: edit("            severity: critical\n", "            team: auth\n"), want: `labels.severity ""`},
		{name: "no runbook", rules: edit("            runbook_url: https://github.com/mcp-authz/mcp-authz/blob/main/docs/monitoring.md#mcpauthzdown\n", ""), want: "annotations.runbook_url is empty"},
		{name: "no summary", rules: edit("summary: No mcp-authz replica is up.", "Summary: x"), want: "annotations.summary is empty"},
		{name: "unknown metric", rules: edit("mcp_authz_router_upstream_failures_total[5m]", "mcp_authz_router_upstream_errors_total[5m]"), want: "alert MCPAuthzUpstreamFailures: expr: mcp_authz_router_upstream_errors_total is not a metric"},
		{name: "wrong label", rules: edit("sum by (namespace, server)", "sum by (namespace, upstream)"), want: `alert MCPAuthzUpstreamFailures: expr: sum by (namespace, upstream)`},
		{name: "parse error", rules: edit(`absent(up{job="mcp-authz"} == 1)`, `absent(up{job="mcp-authz"} == )`), want: "parse:"},
		{name: "bad template", rules: edit("{{ $labels.server }}.", "{{ $labels.server }."), want: "prometheus rule loader"},
		{name: "duplicate alert", rules: edit("alert: MCPAuthzTokenServiceDegraded", "alert: MCPAuthzTokenServiceErrors"), want: "defined twice"},
		{name: "empty groups", rules: "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec: {groups: []}\n", want: "spec.groups is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrs(t, c.checkPrometheusRule([]byte(tt.rules)), tt.want)
		})
	}
}

// TestCheckDashboard checks the shipped dashboard, then breaks it one way
// at a time.
func TestCheckDashboard(t *testing.T) {
	c := testCatalog(t)
	orig := readShipped(t, "mcp-authz-dashboard.json")
	// edit decodes the dashboard, lets fn change it and encodes it again.
	edit := func(fn func(d map[string]any)) string {
		t.Helper()
		var d map[string]any
		if err := json.Unmarshal([]byte(orig), &d); err != nil {
			t.Fatal(err)
		}
		fn(d)
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	panel := func(d map[string]any, i int) map[string]any { return d["panels"].([]any)[i].(map[string]any) }
	target := func(d map[string]any, i int) map[string]any {
		return panel(d, i)["targets"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name, dashboard, want string
	}{
		{name: "shipped", dashboard: orig},
		{name: "not JSON", dashboard: orig[:len(orig)/2], want: "decode dashboard JSON"},
		{name: "two objects", dashboard: orig + "{}", want: "data after the dashboard"},
		{name: "no uid", dashboard: edit(func(d map[string]any) { delete(d, "uid") }), want: `uid ""`},
		{name: "no title", dashboard: edit(func(d map[string]any) { d["title"] = "" }), want: "title is empty"},
		{name: "no datasource variable", dashboard: edit(func(d map[string]any) {
			d["templating"] = map[string]any{"list": []any{}}
		}), want: `no variable "datasource"`},
		{name: "duplicate panel id", dashboard: edit(func(d map[string]any) { panel(d, 2)["id"] = panel(d, 1)["id"] }), want: "id already used"},
		{name: "no panel id", dashboard: edit(func(d map[string]any) { delete(panel(d, 1), "id") }), want: "no id"},
		{name: "no gridPos", dashboard: edit(func(d map[string]any) { delete(panel(d, 1), "gridPos") }), want: "want a type, a title and a gridPos"},
		{name: "fixed datasource", dashboard: edit(func(d map[string]any) {
			panel(d, 1)["datasource"] = map[string]any{"type": "prometheus", "uid": "prod"}
		}), want: "want {type: prometheus, uid: ${datasource}}"},
		{name: "unknown metric", dashboard: edit(func(d map[string]any) {
			target(d, 1)["expr"] = `sum(rate(mcp_authz_decision_total[$__rate_interval]))`
		}), want: "query A: expr: mcp_authz_decision_total is not a metric"},
		{name: "unknown label", dashboard: edit(func(d map[string]any) {
			target(d, 1)["expr"] = `sum by (verdict) (rate(mcp_authz_decisions_total[$__rate_interval]))`
		}), want: `does not carry label "verdict"`},
		{name: "parse error", dashboard: edit(func(d map[string]any) { target(d, 1)["expr"] = `sum(` }), want: "parse:"},
		{name: "duplicate refId", dashboard: edit(func(d map[string]any) {
			ts := panel(d, 2)["targets"].([]any)
			ts[1].(map[string]any)["refId"] = "A"
		}), want: "want a refId unique in the panel"},
		{name: "no queries", dashboard: edit(func(d map[string]any) { panel(d, 1)["targets"] = []any{} }), want: "no queries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrs(t, c.checkDashboard([]byte(tt.dashboard)), tt.want)
		})
	}
}

// TestCheckDir checks a kustomization names every file, and that only
// kinds the checker knows are shipped.
func TestCheckDir(t *testing.T) {
	c := testCatalog(t)
	files := map[string]string{
		"kustomization.yaml":       readShipped(t, "kustomization.yaml"),
		"servicemonitor.yaml":      readShipped(t, "servicemonitor.yaml"),
		"prometheusrule.yaml":      readShipped(t, "prometheusrule.yaml"),
		"mcp-authz-dashboard.json": readShipped(t, "mcp-authz-dashboard.json"),
	}
	tests := []struct {
		name  string
		edit  func(files map[string]string)
		want  string
		wantN int
	}{
		{name: "shipped", wantN: 3},
		{name: "a file the kustomization does not name", edit: func(f map[string]string) { f["other.json"] = "{}" }, want: "other.json: not named by"},
		{name: "a file the kustomization names is missing", edit: func(f map[string]string) { delete(f, "servicemonitor.yaml") }, want: "no such file"},
		{name: "unknown kind", edit: func(f map[string]string) {
			f["servicemonitor.yaml"] = "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: x}\n"
		}, want: `kind "PodMonitor"`},
		{name: "service monitor without selector", edit: func(f map[string]string) {
			f["servicemonitor.yaml"] = strings.Replace(f["servicemonitor.yaml"], "    matchLabels:\n      app.kubernetes.io/name: mcp-authz\n      app.kubernetes.io/instance: mcp-authz\n", "    {}\n", 1)
		}, want: "spec.selector is empty"},
		{name: "service monitor unknown field", edit: func(f map[string]string) {
			f["servicemonitor.yaml"] = strings.Replace(f["servicemonitor.yaml"], "interval: 30s", "intervall: 30s", 1)
		}, want: "unknown field"},
		{name: "generated file not a dashboard", edit: func(f map[string]string) {
			f["kustomization.yaml"] = strings.Replace(f["kustomization.yaml"], "- mcp-authz-dashboard.json", "- mcp-authz-dashboard.json\n      - notes.txt", 1)
			f["notes.txt"] = "x"
		}, want: "only Grafana dashboards"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := map[string]string{}
			for k, v := range files {
				fs[k] = v
			}
			if tt.edit != nil {
				tt.edit(fs)
			}
			for k, v := range fs {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			checked, errs := c.checkDir(dir)
			wantErrs(t, errs, tt.want)
			if tt.wantN > 0 && len(checked) != tt.wantN {
				t.Errorf("checked %v, want %d files", checked, tt.wantN)
			}
		})
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{name: "shipped", args: []string{"-metrics", "testdata/metrics.txt", shipped}, out: "ok ("},
		{name: "no metrics", args: []string{shipped}, code: 2, out: "usage"},
		{name: "no dir", args: []string{"-metrics", "testdata/metrics.txt"}, code: 2, out: "usage"},
		{name: "missing metrics file", args: []string{"-metrics", "testdata/nope.txt", shipped}, code: 1, out: "no such file"},
		{name: "a metric the binary lacks", args: []string{"-metrics", "testdata/metrics-without-router.txt", shipped}, code: 1, out: "mcp_authz_router_streams is not a metric"},
	}
	// A binary built without the router exports none of its metrics.
	data, err := os.ReadFile("testdata/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(data)) {
		if !strings.HasPrefix(l, "mcp_authz_router_") {
			lines = append(lines, l)
		}
	}
	noRouter := filepath.Join(t.TempDir(), "metrics.txt")
	if err := os.WriteFile(noRouter, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	tests[len(tests)-1].args[1] = noRouter
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.out) {
				t.Errorf("output does not contain %q:\n%s", tt.out, out)
			}
		})
	}
}

// TestRunbooks checks every alert's runbook_url points at a section of
// docs/monitoring.md that exists.
func TestRunbooks(t *testing.T) {
	const prefix = "https://github.com/mcp-authz/mcp-authz/blob/main/docs/monitoring.md#"
	doc, err := os.ReadFile("../../docs/monitoring.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for l := range strings.Lines(string(doc)) {
		if h, ok := strings.CutPrefix(l, "### "); ok {
			anchors[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict([]byte(readShipped(t, "prometheusrule.yaml")), &pr); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], prefix)
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q: want %s<a ### heading of docs/monitoring.md>", r.Alert, r.Annotations["runbook_url"], prefix)
			}
		}
	}
	if n == 0 {
		t.Error("no alerts")
	}
}
