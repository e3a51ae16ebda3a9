package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promql parses with the default function set and no experimental
// features: what any Prometheus that loads these rules accepts.
var promql = parser.NewParser(parser.Options{})

// grafanaIntervals stand in for Grafana's interval variables so a panel's
// query parses as Prometheus will receive it.
var grafanaIntervals = strings.NewReplacer(
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval}", "1m", "$__interval", "1m",
	"${__range}", "1h", "$__range", "1h",
)

// checkExpr parses one PromQL expression and checks that every selector
// names a series the binary exports, that every label it matches on or
// groups by is one those series carry, and that histogram_quantile gets
// its le label.
func (c *catalog) checkExpr(expr string) []error {
	if strings.TrimSpace(expr) == "" {
		return []error{errors.New("empty expression")}
	}
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return []error{fmt.Errorf("parse: %w", err)}
	}
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			errs = append(errs, c.checkSelector(n)...)
		case *parser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				break
			}
			if have, known := c.labelsOf(n.Expr); known {
				for _, l := range n.Grouping {
					if !slices.Contains(have, l) {
						errs = append(errs, fmt.Errorf("%s by (%s): %s does not carry label %q", n.Op, strings.Join(n.Grouping, ", "), n.Expr, l))
					}
				}
			}
		case *parser.Call:
			if n.Func.Name != "histogram_quantile" || len(n.Args) != 2 {
				break
			}
			if have, known := c.labelsOf(n.Args[1]); known && !slices.Contains(have, "le") {
				errs = append(errs, fmt.Errorf("histogram_quantile: %s has no le label (keep le in the by clause)", n.Args[1]))
			}
		}
		return nil
	})
	return errs
}

// selectorName is the metric name a selector selects, or "".
func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func (c *catalog) checkSelector(vs *parser.VectorSelector) []error {
	name := selectorName(vs)
	if name == "" {
		return []error{fmt.Errorf("%s: a selector must name one metric", vs)}
	}
	have, err := c.series(name)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, m := range vs.LabelMatchers {
		if m.Name != model.MetricNameLabel && !slices.Contains(have, m.Name) {
			errs = append(errs, fmt.Errorf("%s: %s has no label %q (it has %s)", vs, name, m.Name, strings.Join(have, ", ")))
		}
	}
	return errs
}

// passThrough are the functions whose result keeps the labels of their
// vector argument.
var passThrough = []string{"rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear",
	"avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
	"last_over_time", "quantile_over_time", "stddev_over_time", "changes", "resets",
	"abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "exp", "ln", "log2",
	"log10", "sqrt", "sgn", "timestamp", "histogram_quantile"}

// labelsOf returns the labels the series of e carry, and whether they are
// known (false where the checker does not follow, such as label_replace).
func (c *catalog) labelsOf(e parser.Expr) ([]string, bool) {
	switch e := e.(type) {
	case *parser.VectorSelector:
		have, err := c.series(selectorName(e))
		return have, err == nil
	case *parser.MatrixSelector:
		return c.labelsOf(e.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labelsOf(e.Expr)
	case *parser.ParenExpr:
		return c.labelsOf(e.Expr)
	case *parser.StepInvariantExpr:
		return c.labelsOf(e.Expr)
	case *parser.UnaryExpr:
		return c.labelsOf(e.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return nil, true
	case *parser.Call:
		if !slices.Contains(passThrough, e.Func.Name) {
			return nil, false
		}
		for _, a := range e.Args {
			if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				have, known := c.labelsOf(a)
				if e.Func.Name == "histogram_quantile" {
					have = slices.DeleteFunc(slices.Clone(have), func(l string) bool { return l == "le" })
				}
				return have, known
			}
		}
		return nil, false
	case *parser.AggregateExpr:
		switch {
		case e.Op == parser.COUNT_VALUES:
			return nil, false
		case e.Op == parser.TOPK || e.Op == parser.BOTTOMK || e.Op == parser.LIMITK || e.Op == parser.LIMIT_RATIO:
			return c.labelsOf(e.Expr)
		case !e.Without:
			return e.Grouping, true
		}
		have, known := c.labelsOf(e.Expr)
		return slices.DeleteFunc(slices.Clone(have), func(l string) bool { return slices.Contains(e.Grouping, l) }), known
	case *parser.BinaryExpr:
		lt, rt := e.LHS.Type(), e.RHS.Type()
		switch {
		case lt == parser.ValueTypeScalar:
			return c.labelsOf(e.RHS)
		case rt == parser.ValueTypeScalar:
			return c.labelsOf(e.LHS)
		}
		m := e.VectorMatching
		if e.Op == parser.LAND || e.Op == parser.LUNLESS {
			return c.labelsOf(e.LHS)
		}
		if m == nil || e.Op == parser.LOR || m.Card != parser.CardOneToOne {
			return nil, false
		}
		if m.On {
			return m.MatchingLabels, true
		}
		have, known := c.labelsOf(e.LHS)
		return slices.DeleteFunc(slices.Clone(have), func(l string) bool { return slices.Contains(m.MatchingLabels, l) }), known
	}
	return nil, false
}
