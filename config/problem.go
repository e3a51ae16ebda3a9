package config

import (
	"errors"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// Problem is one fault of a configuration file.
type Problem struct {
	// Line is the 1-based line of the file the fault is at; 0 when it has
	// none.
	Line int
	// Path names the field at fault by its YAML keys from the top of the
	// file ("identity.issuers[1].issuerURL"); "" for the file as a whole.
	Path string
	// Err says what is wrong.
	Err error
}

// Error is the problem as "line N: path: message".
func (p Problem) Error() string {
	loc := ""
	if p.Line > 0 {
		loc = "line " + strconv.Itoa(p.Line) + ": "
	}
	return loc + p.message()
}

// In is the problem as "FILE:LINE: path: message", the form editors and
// CI logs link to.
func (p Problem) In(file string) string {
	loc := file + ": "
	if p.Line > 0 {
		loc = file + ":" + strconv.Itoa(p.Line) + ": "
	}
	return loc + p.message()
}

// message is "path: message", with the message's further lines indented
// so that each problem starts a line of its own.
func (p Problem) message() string {
	msg := strings.ReplaceAll(p.Err.Error(), "\n", "\n    ")
	if p.Path == "" {
		return msg
	}
	return p.Path + ": " + msg
}

func (p Problem) Unwrap() error { return p.Err }

// Error is every problem of a configuration, in the order of the file.
type Error struct {
	// File is the path of the file; "" from Parse.
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	b.WriteString(Count(len(e.Problems)))
	for _, p := range e.Problems {
		b.WriteString("\n")
		if e.File != "" {
			b.WriteString(p.In(e.File))
		} else {
			b.WriteString(p.Error())
		}
	}
	return b.String()
}

// Count is "1 problem" or "n problems".
func Count(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return strconv.Itoa(n) + " problems"
}

// flatten lists the errors joined in err, unjoined.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// syntaxProblem locates a YAML syntax error. The parser reports its line
// only in its message ("yaml: line 3: ..."): this is the one place where a
// line is read from text, because the library offers it no other way. At
// the end of the input it names no line: the last one is taken.
func syntaxProblem(err error, data []byte) Problem {
	msg := err.Error()
	var n int
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		num, text, ok := strings.Cut(rest, ": ")
		if v, aerr := strconv.Atoi(num); ok && aerr == nil {
			return Problem{Line: v, Err: errors.New(text)}
		}
	}
	n = strings.Count(string(data), "\n") + 1
	return Problem{Line: n, Err: errors.New(strings.TrimPrefix(msg, "yaml: "))}
}

// locate turns a located error into a Problem at the line of its field in
// the node tree: the line of the field's key, of the list item it names, or
// of the deepest of its parents the file has. An error at a line inside an
// inline cel or rego source is placed at that line of the file when the
// source is a literal block ("|") or one line.
func locate(root *yaml.Node, err error) Problem {
	var fe *field.Error
	if !errors.As(err, &fe) {
		return Problem{Err: err}
	}
	p := Problem{Path: fe.Path, Err: fe.Err}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == 0 {
		return p
	}
	p.Line = n.Line
	steps := split(fe.Path)
	found := 0
	for _, s := range steps {
		key, next := child(n, s)
		if next == nil {
			break
		}
		found++
		n = next
		p.Line = next.Line
		if key != nil {
			p.Line = key.Line
		}
	}
	if fe.Line > 0 && found == len(steps) && n.Kind == yaml.ScalarNode {
		switch {
		case n.Style == yaml.LiteralStyle:
			p.Line = n.Line + fe.Line // the text starts under the "|"
		case fe.Line == 1 && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 && !strings.Contains(n.Value, "\n"):
			p.Line = n.Line
		}
	}
	return p
}

// split cuts a path into its keys (string) and indexes (int):
// "a.b[1].c" gives a, b, 1, c.
func split(path string) []any {
	var out []any
	for part := range strings.SplitSeq(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			out = append(out, key)
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			if i, err := strconv.Atoi(num); err == nil {
				out = append(out, i)
			}
			_, rest, _ = strings.Cut(after, "[")
		}
	}
	return out
}

// child returns the node s names in n and, for a mapping key, the key.
func child(n *yaml.Node, s any) (key, value *yaml.Node) {
	switch k := s.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil, nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				return n.Content[i], n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
			return nil, n.Content[k]
		}
	}
	return nil, nil
}
