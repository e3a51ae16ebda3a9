package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// checkShape checks the node tree against t, the type it decodes into:
// every key names a field (by its yaml tag) and appears once, and every
// value is of the kind its field takes. Its problems carry the path and
// line of the key or value at fault, and name YAML keys, never Go types.
func checkShape(root *yaml.Node, t reflect.Type) []Problem {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == 0 || n.Kind == yaml.DocumentNode {
		return nil
	}
	var probs []Problem
	shape(n, t, "", &probs, 0)
	return probs
}

// maxDepth bounds the walk; the configuration is a few levels deep.
const maxDepth = 32

var durationType = reflect.TypeFor[time.Duration]()

func shape(n *yaml.Node, t reflect.Type, path string, probs *[]Problem, depth int) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if depth > maxDepth || n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		// An alias is checked where its anchor is; null leaves the
		// field unset.
		return
	}
	bad := func(format string, a ...any) {
		*probs = append(*probs, Problem{Line: n.Line, Path: path, Err: fmt.Errorf(format, a...)})
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad("want a mapping of keys")
			return
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				continue
			}
			p := field.Join(path, k.Value)
			if line, dup := seen[k.Value]; dup {
				*probs = append(*probs, Problem{Line: k.Line, Path: p, Err: fmt.Errorf("given twice (also line %d)", line)})
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				*probs = append(*probs, Problem{Line: k.Line, Path: p, Err: fmt.Errorf("unknown key")})
				continue
			}
			shape(v, ft, p, probs, depth+1)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("want a list")
			return
		}
		for i, item := range n.Content {
			shape(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs, depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad("want a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			shape(n.Content[i+1], t.Elem(), field.Join(path, n.Content[i].Value), probs, depth+1)
		}
	case reflect.Interface:
	default:
		want := kind(t)
		if n.Kind != yaml.ScalarNode {
			bad("want %s", want)
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			bad("want %s, not %q", want, n.Value)
		}
	}
}

// kind says what a scalar of type t looks like in YAML.
func kind(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 30s or 5m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		return "a non-negative integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a string"
}

// yamlFields maps the YAML keys of struct type t to their field types,
// inlined structs included, as the decoder reads them.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
