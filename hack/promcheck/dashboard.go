package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// dashboard holds the fields of a Grafana dashboard model the check reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         *int        `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	GridPos    *gridPos    `json:"gridPos"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type gridPos struct {
	H, W, X, Y int
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dsVar is the dashboard's datasource variable: every query goes through
// it, so the dashboard imports into any Grafana and picks its Prometheus.
const dsVar = "datasource"

// checkDashboard checks a Grafana dashboard: one valid JSON object with a
// uid, a title and a schema version, a Prometheus datasource variable that
// every panel and query uses, panels with unique ids and a place on the
// grid, and queries that select only exported series.
func (c *catalog) checkDashboard(data []byte) []error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		return []error{fmt.Errorf("decode dashboard JSON: %w", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return []error{errors.New("decode dashboard JSON: data after the dashboard object")}
	}
	var errs []error
	if d.UID == "" || len(d.UID) > 40 {
		errs = append(errs, fmt.Errorf("uid %q: want 1 to 40 characters (Grafana's limit)", d.UID))
	}
	if d.Title == "" {
		errs = append(errs, errors.New("title is empty"))
	}
	if d.SchemaVersion == 0 {
		errs = append(errs, errors.New("schemaVersion is missing"))
	}
	hasVar := false
	for _, v := range d.Templating.List {
		if v.Name == dsVar {
			hasVar = v.Type == "datasource" && v.Query == "prometheus"
		}
	}
	if !hasVar {
		errs = append(errs, fmt.Errorf("templating: no variable %q of type datasource with query prometheus", dsVar))
	}
	if len(d.Panels) == 0 {
		errs = append(errs, errors.New("no panels"))
	}
	ids := map[int]string{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for i, p := range ps {
			at := fmt.Sprintf("panel %d %q", i, p.Title)
			if p.ID == nil {
				errs = append(errs, fmt.Errorf("%s: no id", at))
			} else {
				at = fmt.Sprintf("panel id %d %q", *p.ID, p.Title)
				if other, dup := ids[*p.ID]; dup {
					errs = append(errs, fmt.Errorf("%s: id already used by %q", at, other))
				}
				ids[*p.ID] = p.Title
			}
			if p.Type == "" || p.Title == "" || p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
				errs = append(errs, fmt.Errorf("%s: want a type, a title and a gridPos with w and h", at))
			}
			walk(p.Panels)
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if !usesVar(p.Datasource) {
				errs = append(errs, fmt.Errorf("%s: datasource %+v: want {type: prometheus, uid: ${%s}}", at, p.Datasource, dsVar))
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Errorf("%s: no queries", at))
			}
			refs := map[string]bool{}
			for _, t := range p.Targets {
				tat := fmt.Sprintf("%s: query %s", at, t.RefID)
				if t.RefID == "" || refs[t.RefID] {
					errs = append(errs, fmt.Errorf("%s: want a refId unique in the panel", tat))
				}
				refs[t.RefID] = true
				if t.Datasource != nil && !usesVar(t.Datasource) {
					errs = append(errs, fmt.Errorf("%s: datasource %+v: want the panel's", tat, t.Datasource))
				}
				for _, e := range c.checkExpr(grafanaIntervals.Replace(t.Expr)) {
					errs = append(errs, fmt.Errorf("%s: expr: %w", tat, e))
				}
			}
		}
	}
	walk(d.Panels)
	return errs
}

func usesVar(d *datasource) bool {
	return d != nil && d.Type == "prometheus" && (d.UID == "${"+dsVar+"}" || d.UID == "$"+dsVar)
}
