package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsList builds real configurations and checks the families
// listed are those the parts register, vectors without series included.
func TestMetricsList(t *testing.T) {
	dir := t.TempDir()
	all := write(t, dir, "all.yaml", `authz: {listen: 127.0.0.1:9001}
router: {listen: 127.0.0.1:8081}
identity: {issuers: [{issuerURL: http://127.0.0.1:1/realm, audiences: [gw]}]}
metrics: {listen: 127.0.0.1:9090}
`)
	authzOnly := write(t, dir, "authz.yaml", "authz: {listen: 127.0.0.1:9001}\n")
	tests := []struct {
		name string
		args []string
		code int
		want []string // name, type and labels of lines that must be there
		not  []string // names that must not
	}{
		{
			name: "authz and router",
			args: []string{"metrics", "--config", all},
			want: []string{
				"mcp_authz_decisions_total\tunknown\tdecision,reason",
				"mcp_authz_check_duration_seconds\thistogram\t",
				"mcp_authz_config_reload_errors_total\tcounter\t",
				"mcp_authz_config_last_reload_successful\tgauge\t",
				"mcp_authz_router_requests_total\tunknown\tmethod",
				"mcp_authz_router_upstream_failures_total\tunknown\top,server",
				"mcp_authz_router_streams\tgauge\t",
				"go_info\tgauge\tversion",
				"go_gc_duration_seconds\tsummary\t",
				"process_resident_memory_bytes\tgauge\t",
			},
		},
		{
			name: "authz alone registers no router metrics",
			args: []string{"metrics", "--config", authzOnly},
			want: []string{"mcp_authz_decisions_total\tunknown\tdecision,reason"},
			not:  []string{"mcp_authz_router_requests_total"},
		},
		{name: "no config", args: []string{"metrics"}, code: 2},
		{name: "extra argument", args: []string{"metrics", "--config", all, "x"}, code: 2},
		{name: "missing file", args: []string{"metrics", "--config", dir + "/nope.yaml"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			lines := map[string]string{}
			for l := range strings.Lines(stdout.String()) {
				name, _, _ := strings.Cut(l, "\t")
				if _, dup := lines[name]; dup {
					t.Errorf("%s listed twice", name)
				}
				lines[name] = l
			}
			for _, w := range tt.want {
				name, _, _ := strings.Cut(w, "\t")
				if !strings.HasPrefix(lines[name], w+"\t") {
					t.Errorf("want a line starting %q, got %q", w, lines[name])
				}
			}
			for _, n := range tt.not {
				if l, ok := lines[n]; ok {
					t.Errorf("listed %q", l)
				}
			}
		})
	}
}

// TestParseDesc reads descriptors made by client_golang itself, so a change
// of Desc.String's format fails here rather than in make monitoring-check.
func TestParseDesc(t *testing.T) {
	tests := []struct {
		name string
		desc *prometheus.Desc
		want family
	}{
		{
			name: "plain",
			desc: prometheus.NewDesc("a_total", "Help.", nil, nil),
			want: family{name: "a_total", help: "Help."},
		},
		{
			name: "variable and constant labels, sorted",
			desc: prometheus.NewDesc("b", "x", []string{"server", "op"}, prometheus.Labels{"zone": `a="b", c={d}`}),
			want: family{name: "b", help: "x", labels: []string{"op", "server", "zone"}},
		},
		{
			name: "constrained label",
			desc: prometheus.V2.NewDesc("c", "x", prometheus.ConstrainedLabels{{Name: "m", Constraint: strings.ToLower}}, nil),
			want: family{name: "c", help: "x", labels: []string{"m"}},
		},
		{
			name: "help with quotes and braces",
			desc: prometheus.NewDesc("d", `say "}, variableLabels: {x}}"`, []string{"l"}, nil),
			want: family{name: "d", help: `say "}, variableLabels: {x}}"`, labels: []string{"l"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDesc(tt.desc.String())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(family{})); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.desc, diff)
			}
		})
	}
	if _, err := parseDesc(`Desc{name: "x"}`); err == nil {
		t.Error("an unknown format parsed")
	}
}
