// Package field locates configuration errors by the path of the field at fault.
//
// A path names a field by its YAML keys, relative to the Config that reports
// it: "issuerURL", "issuers[1].audiences", "[2].url" for an item of a list,
// "" for the Config as a whole. The config package places a part's paths
// under the part's section (Under) and turns each into a line of the file.
package field

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a problem with one field.
type Error struct {
	// Path names the field (see the package comment).
	Path string
	// Line, when not 0, is the 1-based line inside the field's own text (a
	// CEL or Rego source) that the problem is at.
	Line int
	// Err says what is wrong, naming YAML keys rather than Go types.
	Err error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error at path whose Err is fmt.Errorf(format, a...).
func Errorf(path, format string, a ...any) error {
	return &Error{Path: path, Err: fmt.Errorf(format, a...)}
}

// Under places err under the field parent: the paths of the Errors in it,
// alone or joined (errors.Join), become parent's children; any other error
// becomes an Error at parent. Under returns nil for a nil err.
func Under(parent string, err error) error {
	switch e := err.(type) { //nolint:errorlint // err itself only: a wrapped Error keeps its wrapper's text, placed at parent
	case nil:
		return nil
	case *Error:
		c := *e
		c.Path = Join(parent, e.Path)
		return &c
	case interface{ Unwrap() []error }:
		var out []error
		for _, x := range e.Unwrap() {
			out = append(out, Under(parent, x))
		}
		return errors.Join(out...)
	}
	return &Error{Path: parent, Err: err}
}

// Join is the path of child under parent: "a" and "b" give "a.b", "a" and
// "[1].b" give "a[1].b".
func Join(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case strings.HasPrefix(child, "["):
		return parent + child
	}
	return parent + "." + child
}
