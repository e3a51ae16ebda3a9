package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// family is one metric family the binary exports, as `mcp-authz metrics`
// lists it.
type family struct {
	name, typ string
	labels    []string
}

// targetLabels are added by Prometheus to every series it scrapes through a
// ServiceMonitor (target labels), so selectors and groupings may use them.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// scrapeSeries are the series Prometheus itself writes for every target.
var scrapeSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added"}

// catalog maps every series name a query may select to the family that
// exports it.
type catalog struct {
	families map[string]family // by family name
}

// readCatalog reads the output of `mcp-authz metrics`: name, type, labels
// (comma-separated) and help, tab-separated, one family a line.
func readCatalog(r io.Reader) (*catalog, error) {
	c := &catalog{families: map[string]family{}}
	for _, s := range scrapeSeries {
		c.families[s] = family{name: s, typ: "gauge"}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 4 || fields[0] == "" {
			return nil, fmt.Errorf("metrics list: line %d: want name, type, labels and help, tab-separated: %q", n, sc.Text())
		}
		f := family{name: fields[0], typ: fields[1]}
		switch f.typ {
		case "counter", "gauge", "histogram", "summary", "untyped", "unknown":
		default:
			return nil, fmt.Errorf("metrics list: line %d: %s: unknown type %q", n, f.name, f.typ)
		}
		if fields[2] != "" {
			f.labels = strings.Split(fields[2], ",")
		}
		c.families[f.name] = f
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics list: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("metrics list: empty")
	}
	return c, nil
}

// series resolves a series name a query selects to the labels its series
// carry. Classic histograms export only name_bucket (with le), name_sum and
// name_count; summaries name (with quantile), name_sum and name_count.
// A family of unknown type (a vector with no series when it was listed)
// matches its own name only.
func (c *catalog) series(name string) ([]string, error) {
	if f, ok := c.families[name]; ok {
		switch f.typ {
		case "histogram":
			return nil, fmt.Errorf("%s is a histogram: select %[1]s_bucket, %[1]s_sum or %[1]s_count", name)
		case "summary":
			return withTarget(f.labels, "quantile"), nil
		}
		return withTarget(f.labels), nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := c.families[base]
		switch {
		case !ok:
		case f.typ == "histogram" && suffix == "_bucket":
			return withTarget(f.labels, "le"), nil
		case f.typ == "histogram" || f.typ == "summary" && suffix != "_bucket":
			return withTarget(f.labels), nil
		case f.typ == "unknown":
			return nil, fmt.Errorf("%s: %s has no series yet in the listing, so its type is unknown and only its own name is known", name, base)
		default:
			return nil, fmt.Errorf("%s: %s is a %s, which has no %s series", name, base, f.typ, suffix)
		}
	}
	return nil, fmt.Errorf("%s is not a metric the binary exports (mcp-authz metrics lists them)", name)
}

func withTarget(labels []string, extra ...string) []string {
	out := slices.Concat(labels, targetLabels, extra)
	slices.Sort(out)
	return slices.Compact(out)
}
