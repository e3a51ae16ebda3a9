// Package policytest runs the tests of a policy directory, as mcp-authz
// policy test does: the Rego test_ rules of each directory and the cases of
// every *_test.yaml or cases.yaml file.
package policytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/policy"
)

// CaseFile is a YAML file of policy cases (named *_test.yaml or cases.yaml).
type CaseFile struct {
	// Policies are .cel or .rego files, relative to the case file, that each
	// case runs against unless it names its own policy.
	Policies []string `yaml:"policies"`
	Cases    []Case   `yaml:"cases"`
}

// Case is one input and the decision expected of it.
type Case struct {
	Name string `yaml:"name"`
	// Policy is a .cel or .rego file for this case only.
	Policy string `yaml:"policy"`
	// Expression is an inline CEL expression for this case only.
	Expression string `yaml:"expression"`
	// Input is the input document, in the shape of policy.Input.
	Input map[string]any `yaml:"input"`
	// Allow is the expected decision.
	Allow bool `yaml:"allow"`
	// Reason, when set, is the expected reason.
	Reason string `yaml:"reason"`
}

// RunTests runs the policy tests under dir and prints one PASS, FAIL or ERROR
// line per test to w, as opa test -v does: the Rego test_ rules of each
// directory (each directory is compiled on its own, as policy.Compile compiles each
// policy on its own) and the cases of every *_test.yaml or cases.yaml file.
// It returns the number of tests that did not pass; err reports a directory
// that cannot be read or holds no test.
func RunTests(ctx context.Context, dir string, w io.Writer) (failed int, err error) {
	rego, cases := map[string][]string{}, []string{}
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := e.Name()
		if e.IsDir() {
			if path != dir && strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(name, ".rego"):
			rego[filepath.Dir(path)] = append(rego[filepath.Dir(path)], path)
		case strings.HasSuffix(name, "_test.yaml"), strings.HasSuffix(name, "_test.yml"), name == "cases.yaml":
			cases = append(cases, path)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("policy: test: %w", err)
	}
	out := &printer{w: w}
	total := 0
	dirs := make([]string, 0, len(rego))
	for d := range rego {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		n, f := runRegoTests(ctx, rego[d], out)
		total += n
		failed += f
	}
	for _, path := range cases {
		n, f := runCaseFile(ctx, path, out)
		total += n
		failed += f
	}
	if total == 0 {
		return 0, fmt.Errorf("policy: test: no tests in %s", dir)
	}
	if failed > 0 {
		out.printf("FAIL: %d/%d\n", failed, total)
	} else {
		out.printf("PASS: %d/%d\n", total, total)
	}
	if out.err != nil {
		return failed, fmt.Errorf("policy: test: write: %w", out.err)
	}
	return failed, nil
}

// printer writes the report and keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// runRegoTests runs the test_ rules of one directory's modules.
func runRegoTests(ctx context.Context, files []string, out *printer) (total, failed int) {
	mods := map[string]*ast.Module{}
	hasTests := false
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err == nil {
			mods[f], err = ast.ParseModuleWithOpts(f, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		}
		if err != nil {
			out.printf("%s: ERROR\n  %v\n", f, err)
			return 1, 1
		}
		for _, r := range mods[f].Rules {
			if strings.HasPrefix(r.Head.Name.String(), tester.TestPrefix) ||
				strings.HasPrefix(r.Head.Ref().String(), tester.TestPrefix) {
				hasTests = true
			}
		}
	}
	if !hasTests {
		return 0, 0
	}
	compiler := policy.NewRegoCompiler().WithEnablePrintStatements(true)
	ch, err := tester.NewRunner().SetCompiler(compiler).SetModules(mods).SetParallel(1).
		CapturePrintOutput(true).RunTests(ctx, nil)
	if err != nil {
		out.printf("%s: ERROR\n  %v\n", filepath.Dir(files[0]), err)
		return 1, 1
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	where := func(r *tester.Result) (string, int) {
		if r.Location == nil {
			return "", 0
		}
		return r.Location.File, r.Location.Row
	}
	slices.SortFunc(results, func(a, b *tester.Result) int {
		fa, ra := where(a)
		fb, rb := where(b)
		if c := strings.Compare(fa, fb); c != 0 {
			return c
		}
		return ra - rb
	})
	file := ""
	for _, r := range results {
		if f, _ := where(r); f != file {
			file = f
			out.printf("%s:\n", file)
		}
		if r.Skip {
			out.printf("%s.%s: SKIPPED\n", r.Package, r.Name)
			continue
		}
		total++
		switch {
		case r.Error != nil:
			failed++
			out.printf("%s.%s: ERROR (%v)\n  %v\n", r.Package, r.Name, r.Duration, r.Error)
		case r.Fail:
			failed++
			out.printf("%s.%s: FAIL (%v)\n", r.Package, r.Name, r.Duration)
			if len(r.Output) > 0 {
				out.printf("  %s\n", bytes.TrimSpace(r.Output))
			}
		default:
			out.printf("%s.%s: PASS (%v)\n", r.Package, r.Name, r.Duration)
		}
	}
	return total, failed
}

// runCaseFile runs the cases of one YAML file against its policies.
func runCaseFile(ctx context.Context, path string, out *printer) (total, failed int) {
	out.printf("%s:\n", path)
	cf, err := readCaseFile(path)
	if err != nil {
		out.printf("ERROR\n  %v\n", err)
		return 1, 1
	}
	dir := filepath.Dir(path)
	sets := map[string]*policy.Set{}
	set := func(p policy.Policy) (*policy.Set, error) {
		key := p.File + "\x00" + p.CEL
		if s, ok := sets[key]; ok {
			return s, nil
		}
		s, err := policy.Compile(policy.Config{Policies: []policy.Policy{p}, BaseDir: dir})
		if err == nil {
			sets[key] = s
		}
		return s, err
	}
	for i, c := range cf.Cases {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		var ps []policy.Policy
		switch {
		case c.Expression != "":
			ps = []policy.Policy{{Name: "expression", CEL: c.Expression}}
		case c.Policy != "":
			ps = []policy.Policy{{Name: c.Policy, File: c.Policy}}
		default:
			for _, f := range cf.Policies {
				ps = append(ps, policy.Policy{Name: f, File: f})
			}
		}
		if len(ps) == 0 {
			total++
			failed++
			out.printf("%s: ERROR\n  no policy: set policies, policy or expression\n", name)
			continue
		}
		in, err := caseInput(c.Input)
		for _, p := range ps {
			total++
			label := fmt.Sprintf("%s [%s]", name, p.Name)
			if err != nil {
				failed++
				out.printf("%s: ERROR\n  input: %v\n", label, err)
				continue
			}
			s, err := set(p)
			if err != nil {
				failed++
				out.printf("%s: ERROR\n  %v\n", label, err)
				continue
			}
			d := s.Decide(ctx, in)
			if d.Allow != c.Allow || (c.Reason != "" && d.Reason != c.Reason) {
				failed++
				want := fmt.Sprintf("allow=%t", c.Allow)
				if c.Reason != "" {
					want += " reason=" + c.Reason
				}
				out.printf("%s: FAIL\n  got allow=%t reason=%s, want %s\n", label, d.Allow, d.Reason, want)
				continue
			}
			out.printf("%s: PASS\n", label)
		}
	}
	return total, failed
}

func readCaseFile(path string) (*CaseFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var cf CaseFile
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cf.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	return &cf, nil
}

// caseInput converts a YAML input document to a policy.Input.
func caseInput(m map[string]any) (*policy.Input, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return policy.ParseInput(raw)
}
