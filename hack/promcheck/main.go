// Command promcheck checks the monitoring manifests mcp-authz ships (a
// PrometheusRule, a ServiceMonitor and Grafana dashboards, gathered by a
// kustomization) against the metrics the binary exports:
//
//	mcp-authz metrics --config dev/mcp-authz.yaml >metrics.txt
//	promcheck -metrics metrics.txt manifests/monitoring
//
// Every PromQL expression is parsed with Prometheus' own parser and may
// select only series the binary exports, match and group only on labels
// those series carry. make monitoring-check runs it. It is a module of its
// own so that the main module does not take on Prometheus' dependencies.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("promcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metricsPath := fs.String("metrics", "", "`FILE` listing the exported metrics (the output of mcp-authz metrics)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *metricsPath == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: promcheck -metrics FILE DIR...")
		return 2
	}
	f, err := os.Open(*metricsPath)
	if err != nil {
		fmt.Fprintln(stderr, "promcheck:", err)
		return 1
	}
	c, err := readCatalog(f)
	_ = f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "promcheck: %s: %v\n", *metricsPath, err)
		return 1
	}
	failed := 0
	for _, dir := range fs.Args() {
		files, errs := c.checkDir(dir)
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		if len(errs) > 0 {
			failed += len(errs)
			continue
		}
		fmt.Fprintf(stdout, "promcheck: %s: ok (%s)\n", dir, strings.Join(files, ", "))
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "promcheck: %d problems\n", failed)
		return 1
	}
	return 0
}

// kustomization holds the fields of a kustomization.yaml that name files.
type kustomization struct {
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
}

// checkDir checks every file the kustomization in dir names, and that it
// names every file in dir: nothing shipped there goes unchecked. It returns
// the files checked.
func (c *catalog) checkDir(dir string) ([]string, []error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, []error{err}
	}
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", filepath.Join(dir, "kustomization.yaml"), err)}
	}
	var errs []error
	var checked []string
	check := func(name string, fn func([]byte) []error) {
		p := filepath.Join(dir, name)
		checked = append(checked, name)
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range fn(data) {
			errs = append(errs, fmt.Errorf("%s: %w", p, e))
		}
	}
	for _, r := range k.Resources {
		check(r, c.checkManifest)
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			if _, path, ok := strings.Cut(f, "="); ok {
				f = path
			}
			if filepath.Ext(f) != ".json" {
				errs = append(errs, fmt.Errorf("%s: configMapGenerator file %s: only Grafana dashboards (.json) are checked", dir, f))
				continue
			}
			check(f, c.checkDashboard)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, append(errs, err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "kustomization.yaml" && !slices.Contains(checked, n) {
			errs = append(errs, fmt.Errorf("%s: not named by %s/kustomization.yaml, so neither shipped nor checked", filepath.Join(dir, n), dir))
		}
	}
	return checked, errs
}

// checkManifest checks one resource by its kind.
func (c *catalog) checkManifest(data []byte) []error {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		return []error{err}
	}
	switch meta.Kind {
	case monitoringv1.PrometheusRuleKind:
		return c.checkPrometheusRule(data)
	case monitoringv1.ServiceMonitorsKind:
		return checkServiceMonitor(data)
	}
	return []error{fmt.Errorf("kind %q: promcheck checks PrometheusRule and ServiceMonitor only", meta.Kind)}
}

// checkServiceMonitor decodes a ServiceMonitor strictly into the operator's
// type and requires an endpoint that scrapes /metrics by port name.
func checkServiceMonitor(data []byte) []error {
	var sm monitoringv1.ServiceMonitor
	if err := yaml.UnmarshalStrict(data, &sm); err != nil {
		return []error{fmt.Errorf("decode ServiceMonitor: %w", err)}
	}
	var errs []error
	if sm.APIVersion != monitoringv1.SchemeGroupVersion.String() || sm.Name == "" {
		errs = append(errs, fmt.Errorf("apiVersion %q, name %q: want %s and a name", sm.APIVersion, sm.Name, monitoringv1.SchemeGroupVersion))
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 && len(sm.Spec.Selector.MatchExpressions) == 0 {
		errs = append(errs, errors.New("spec.selector is empty: it would select every Service"))
	}
	if len(sm.Spec.Endpoints) == 0 {
		errs = append(errs, errors.New("spec.endpoints is empty"))
	}
	for i, ep := range sm.Spec.Endpoints {
		if ep.Port == "" || (ep.Path != "" && ep.Path != "/metrics") {
			errs = append(errs, fmt.Errorf("spec.endpoints[%d]: want a port name and path /metrics", i))
		}
	}
	return errs
}
