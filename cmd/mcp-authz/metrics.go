package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/mcp-authz/mcp-authz/config"
)

// newMetricsRegistry is the registry serve exports at /metrics: the Go and
// process collectors, and whatever the parts register.
func newMetricsRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// metricsCommand is hidden: make monitoring-check runs it.
func metricsCommand() *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:    "metrics --config FILE",
		Short:  "List the metric families the configured parts export",
		Long:   "List the metric families the configured parts export, one a line: name, type, labels and help, tab-separated (for make monitoring-check).",
		Hidden: true,
		Args:   exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "config"); err != nil {
				return err
			}
			return metricsList(cmd.Context(), cfgPath, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "configuration `FILE`")
	return c
}

// metricsList builds the parts a configuration enables, exactly as serve
// does but without starting them, and prints every metric family their
// registry describes, one a line: name, type, labels (comma-separated) and
// help, tab-separated, sorted by name. Describe, unlike a scrape, includes
// vectors that have no series yet; their type is "unknown" (a Desc does not
// carry one). make monitoring-check checks the dashboard and alerts
// against this list.
func metricsList(ctx context.Context, cfgPath string, stdout, stderr io.Writer) error {
	f, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	reg := newMetricsRegistry()
	if _, err := build(ctx, f, cfgPath, newLogger(f.Log, stderr), reg); err != nil {
		return err
	}
	fams, err := describe(reg)
	if err != nil {
		return err
	}
	for _, m := range fams {
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", m.name, m.typ, strings.Join(m.labels, ","), strings.ReplaceAll(m.help, "\n", " "))
	}
	return nil
}

// family is one metric family a registry exports.
type family struct {
	name, typ, help string
	labels          []string // variable and constant label names, sorted
}

// describe lists the families of every collector registered with reg,
// typed from a gather where they have series.
func describe(reg *prometheus.Registry) ([]family, error) {
	gathered, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	types := make(map[string]string, len(gathered))
	for _, mf := range gathered {
		types[mf.GetName()] = strings.ToLower(mf.GetType().String()) // counter, gauge, histogram…
	}
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	seen := map[string]bool{}
	var fams []family
	for d := range ch {
		m, err := parseDesc(d.String())
		if err != nil {
			return nil, err
		}
		if seen[m.name] {
			continue
		}
		seen[m.name] = true
		m.typ = cmp.Or(types[m.name], "unknown")
		fams = append(fams, m)
	}
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name, b.name) })
	return fams, nil
}

// descRE matches prometheus.Desc.String(), the only way a Desc tells its
// name and labels: Desc{fqName: "…", help: "…", unit: "…",
// constLabels: {k="v",…}, variableLabels: {a,c(b),…}}. The quoted fields
// are matched as Go string literals, so nothing inside them can end one early.
var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), (?:unit: "(?:[^"\\]|\\.)*", )?constLabels: \{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\}, variableLabels: \{([^{}]*)\}\}$`)

var constLabelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

// parseDesc reads a family's name, help and label names from the String of
// its Desc.
func parseDesc(s string) (family, error) {
	m := descRE.FindStringSubmatch(s)
	if m == nil {
		return family{}, fmt.Errorf("metrics: unexpected descriptor %s", s)
	}
	var f family
	var err error
	if f.name, err = strconv.Unquote(m[1]); err != nil {
		return family{}, fmt.Errorf("metrics: descriptor %s: %w", s, err)
	}
	if f.help, err = strconv.Unquote(m[2]); err != nil {
		return family{}, fmt.Errorf("metrics: descriptor %s: %w", s, err)
	}
	for _, c := range constLabelRE.FindAllStringSubmatch(m[3], -1) {
		f.labels = append(f.labels, c[1])
	}
	for l := range strings.SplitSeq(m[4], ",") {
		if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
			f.labels = append(f.labels, l)
		}
	}
	slices.Sort(f.labels)
	return f, nil
}
