package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Statuses of a check in the suite's checks.json. SUCCESS passes; FAILURE
// and WARNING (a SHOULD not met, or a feature that works in part) do not.
// INFO is neither: the suite says what it saw where the spec allows either
// (server-sse-streams-functional is INFO when a server answers the POSTs
// with JSON rather than SSE), so it is left out of the counts and is never
// a gap.
const (
	statusSuccess = "SUCCESS"
	statusInfo    = "INFO"
)

// check is one check of one scenario, as the suite wrote it.
type check struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Description string `json:"description"`
	Message     string `json:"errorMessage"`
}

func (c check) passed() bool { return c.Status == statusSuccess }

func (c check) info() bool { return c.Status == statusInfo }

// scenario is the outcome of one scenario of one run.
type scenario struct {
	Name   string
	Checks []check // in the suite's order; IDs made unique by readResults
}

// count returns how many checks passed, how many count (all but INFO) and
// how many are INFO.
func (s *scenario) count() (passed, counted, info int) {
	for _, c := range s.Checks {
		switch {
		case c.passed():
			passed++
		case c.info():
			info++
			continue
		}
		counted++
	}
	return passed, counted, info
}

// ok is true when the scenario ran and every check that counts passed.
func (s *scenario) ok() bool {
	if s == nil {
		return false
	}
	passed, counted, _ := s.count()
	return counted > 0 && passed == counted
}

func (s *scenario) check(id string) (check, bool) {
	if s != nil {
		for _, c := range s.Checks {
			if c.ID == id {
				return c, true
			}
		}
	}
	return check{}, false
}

// results are the scenarios of one run of the suite, by name.
type results map[string]*scenario

// resultDir is the name of the folder the suite writes for one scenario
// (-o DIR): server-<scenario>-<ISO time with - for : and .>.
var resultDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$`)

// readResults reads the checks.json files the suite wrote under dir. A
// check ID that repeats within a scenario gets "#2", "#3"... so that each
// can be compared on its own.
func readResults(dir string) (results, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	res := results{}
	for _, e := range entries {
		m := resultDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "checks.json"))
		if err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		var checks []check
		if err := json.Unmarshal(data, &checks); err != nil {
			return nil, fmt.Errorf("read results: %s: %w", e.Name(), err)
		}
		if _, dup := res[m[1]]; dup {
			return nil, fmt.Errorf("read results: scenario %s ran twice", m[1])
		}
		seen := map[string]int{}
		for i := range checks {
			id := checks[i].ID
			if seen[id]++; seen[id] > 1 {
				checks[i].ID = id + "#" + strconv.Itoa(seen[id])
			}
		}
		res[m[1]] = &scenario{Name: m[1], Checks: checks}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("read results: no scenario results in %s", dir)
	}
	return res, nil
}

// gap is a check that passes directly and not through mcp-authz, named
// "spec scenario/check".
type gap struct {
	Spec, Scenario, Check string
}

func (g gap) String() string { return g.Spec + " " + g.Scenario + "/" + g.Check }

// gaps lists, in the suite's order, every check that passes in direct and
// does not pass (or did not run) in through, and, for a scenario that passes
// directly, every check that fails only through (the suite reports some
// errors under an ID of their own, such as server-sse-multiple-streams-error);
// info lists those that pass directly and are INFO through (not a failure,
// but not exercised).
func gaps(spec string, direct, through results) (gaps, info []gap) {
	for _, name := range sortedNames(direct) {
		d, t := direct[name], through[name]
		for _, c := range d.Checks {
			if !c.passed() {
				continue
			}
			tc, ran := t.check(c.ID)
			g := gap{Spec: spec, Scenario: name, Check: c.ID}
			switch {
			case ran && tc.passed():
			case ran && tc.info():
				info = append(info, g)
			default:
				gaps = append(gaps, g)
			}
		}
		if !d.ok() || t == nil {
			continue
		}
		for _, tc := range t.Checks {
			if _, both := d.check(tc.ID); !both && !tc.passed() && !tc.info() {
				gaps = append(gaps, gap{Spec: spec, Scenario: name, Check: tc.ID})
			}
		}
	}
	return gaps, info
}

func sortedNames(rs ...results) []string {
	var names []string
	for _, r := range rs {
		for n := range r {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// knownGaps is hack/conformance/known-gaps.txt: the gaps accepted today,
// each with the reason found, so that make conformance fails on a new gap
// and on a listed one that has closed (the list only shrinks).
type knownGaps map[gap]string

// parseKnownGaps reads lines "SPEC SCENARIO/CHECK REASON..."; blank lines
// and lines starting with # are skipped. A reason is required, and a line
// that does not parse is an error naming it: a list that cannot be read
// must not excuse anything.
func parseKnownGaps(r io.Reader) (knownGaps, error) {
	known := knownGaps{}
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			errs = append(errs, fmt.Errorf("line %d: want SPEC SCENARIO/CHECK REASON", n))
			continue
		}
		scen, chk, ok := strings.Cut(fields[1], "/")
		if !ok || scen == "" || chk == "" {
			errs = append(errs, fmt.Errorf("line %d: %q is not SCENARIO/CHECK", n, fields[1]))
			continue
		}
		g := gap{Spec: fields[0], Scenario: scen, Check: chk}
		if _, dup := known[g]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s is listed twice", n, g))
			continue
		}
		known[g] = strings.Join(fields[2:], " ")
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("known gaps: %w", err)
	}
	return known, nil
}

// verdict compares the gaps measured for the specs that ran with the known
// ones: fresh are gaps not listed, closed are listed gaps of those specs
// that are gone (the check now passes through mcp-authz, or no longer
// passes directly, or was renamed by a new suite).
func verdict(measured []gap, known knownGaps, specs []string) (fresh, closed []gap) {
	got := map[gap]bool{}
	for _, g := range measured {
		got[g] = true
		if _, ok := known[g]; !ok {
			fresh = append(fresh, g)
		}
	}
	for g := range known {
		if slices.Contains(specs, g.Spec) && !got[g] {
			closed = append(closed, g)
		}
	}
	slices.SortFunc(closed, func(a, b gap) int { return strings.Compare(a.String(), b.String()) })
	return fresh, closed
}
