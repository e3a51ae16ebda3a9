package policy

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"cel.dev/cel-go/common"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// Validate reports every problem of c, each an *field.Error whose path is
// the field's YAML key ("policies[1].cel", "defaultPolicy"). It compiles
// each policy on its own, reading its file if it names one, and sets Line
// for a fault inside an inline cel or rego source. Compile reports the same
// problems, one at a time, without paths: it is what runs on reload and in
// the cluster, and compiling twice is not worth the cost there.
func (c Config) Validate() error {
	var errs []error
	switch c.Default {
	case "", "deny", "allow":
	default:
		errs = append(errs, field.Errorf("defaultPolicy", "%q: want deny or allow", c.Default))
	}
	seen := map[string]int{}
	for i, p := range c.Policies {
		at := func(f string) string { return fmt.Sprintf("policies[%d]%s", i, f) }
		switch j, dup := seen[p.Name]; {
		case p.Name == "":
			errs = append(errs, field.Errorf(at(".name"), "required"))
		case dup:
			errs = append(errs, field.Errorf(at(".name"), "%q is also policies[%d]", p.Name, j))
		default:
			seen[p.Name] = i
		}
		for k, s := range p.Servers {
			if s != "*" && strings.TrimSpace(s) == "" {
				errs = append(errs, field.Errorf(at(fmt.Sprintf(".servers[%d]", k)), "empty name"))
			}
		}
		for k, sc := range p.StepUpScopes {
			if err := checkScopes([]string{sc}); err != nil {
				errs = append(errs, &field.Error{Path: at(fmt.Sprintf(".stepUpScopes[%d]", k)), Err: err})
			}
		}
		errs = append(errs, c.validateSource(p, at))
	}
	return errors.Join(errs...)
}

// validateSource compiles p's one source and locates what is wrong with it.
func (c Config) validateSource(p Policy, at func(string) string) error {
	var src string // the field holding the source
	n := 0
	for _, s := range []struct{ field, text string }{{".cel", p.CEL}, {".rego", p.Rego}, {".file", p.File}} {
		if s.text != "" {
			src = s.field
			n++
		}
	}
	if n != 1 {
		return field.Errorf(at(""), "want exactly one of cel, rego or file")
	}
	rego := p.Rego != "" || (p.File != "" && filepath.Ext(p.File) == ".rego")
	if p.Query != "" && !rego {
		return field.Errorf(at(".query"), "applies to rego only")
	}
	_, err := compileOne(c, p)
	if err == nil {
		return nil
	}
	e := &field.Error{Path: at(src), Err: err}
	switch {
	case p.Rego != "":
		var ae ast.Errors
		if errors.As(err, &ae) && len(ae) > 0 && ae[0].Location != nil {
			e.Line = ae[0].Location.Row
		}
	case p.CEL != "":
		e.Line = celLine(p.Name+".cel", p.CEL)
	}
	return e
}

// celLine is the line of src's first compile error, 0 if none is located.
func celLine(name, src string) int {
	env, err := celEnv()
	if err != nil {
		return 0
	}
	_, iss := env.CompileSource(common.NewStringSource(src, name))
	if iss == nil || len(iss.Errors()) == 0 {
		return 0
	}
	return iss.Errors()[0].Location.Line()
}
