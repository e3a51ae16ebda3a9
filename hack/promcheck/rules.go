package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"sigs.k8s.io/yaml"
)

// severities are the values of an alert's severity label that
// Alertmanager routes (the kube-prometheus convention).
var severities = []string{"critical", "warning", "info"}

// checkPrometheusRule checks a PrometheusRule manifest: the operator's own
// type decodes it strictly, Prometheus' rule loader validates its groups
// (names, expressions, templates), every expression selects only exported
// series, and every alert carries what on-call needs.
func (c *catalog) checkPrometheusRule(data []byte) []error {
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		return []error{fmt.Errorf("decode PrometheusRule: %w", err)}
	}
	var errs []error
	if pr.APIVersion != monitoringv1.SchemeGroupVersion.String() || pr.Kind != monitoringv1.PrometheusRuleKind {
		errs = append(errs, fmt.Errorf("apiVersion %q, kind %q: want %s, %s", pr.APIVersion, pr.Kind, monitoringv1.SchemeGroupVersion, monitoringv1.PrometheusRuleKind))
	}
	if pr.Name == "" {
		errs = append(errs, fmt.Errorf("metadata.name is empty"))
	}
	if len(pr.Spec.Groups) == 0 {
		errs = append(errs, fmt.Errorf("spec.groups is empty"))
	}
	groups, err := yaml.Marshal(pr.Spec)
	if err != nil {
		return append(errs, fmt.Errorf("spec: %w", err))
	}
	if _, perrs := rulefmt.Parse(groups, false, model.LegacyValidation, promql, slog.New(slog.NewTextHandler(io.Discard, nil))); len(perrs) > 0 {
		for _, e := range perrs {
			errs = append(errs, fmt.Errorf("prometheus rule loader: %w", e))
		}
	}
	alerts := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		if len(g.Rules) == 0 {
			errs = append(errs, fmt.Errorf("group %s: no rules", g.Name))
		}
		for i, r := range g.Rules {
			at := fmt.Sprintf("group %s: rule %d (record %q)", g.Name, i, r.Record)
			if r.Alert != "" {
				at = fmt.Sprintf("group %s: alert %s", g.Name, r.Alert)
				errs = append(errs, checkAlert(at, r)...)
				if alerts[r.Alert] {
					errs = append(errs, fmt.Errorf("%s: defined twice", at))
				}
				alerts[r.Alert] = true
			}
			for _, e := range c.checkExpr(r.Expr.String()) {
				errs = append(errs, fmt.Errorf("%s: expr: %w", at, e))
			}
		}
	}
	return errs
}

// checkAlert requires a for duration (no alert pages on one evaluation), a
// routable severity and the annotations on-call reads.
func checkAlert(at string, r monitoringv1.Rule) []error {
	var errs []error
	if r.For == nil {
		errs = append(errs, fmt.Errorf("%s: no for: an alert must hold for a while before it fires", at))
	} else if d, err := model.ParseDuration(string(*r.For)); err != nil || time.Duration(d) <= 0 {
		errs = append(errs, fmt.Errorf("%s: for %q: want a positive duration", at, *r.For))
	}
	if s := r.Labels["severity"]; !slices.Contains(severities, s) {
		errs = append(errs, fmt.Errorf("%s: labels.severity %q: want one of %v", at, s, severities))
	}
	for _, a := range []string{"summary", "description", "runbook_url"} {
		if r.Annotations[a] == "" {
			errs = append(errs, fmt.Errorf("%s: annotations.%s is empty", at, a))
		}
	}
	return errs
}
