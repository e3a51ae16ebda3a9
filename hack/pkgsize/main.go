// Command pkgsize enforces the house limit on package size: it counts the
// code lines (lines holding a Go token, so neither blank nor comment-only)
// of every package's non-test .go files, generated files left out, and exits
// 1 naming each package over the limit that is not allowed to be. Run it
// from the module root (make lint does): go run ./hack/pkgsize. -v prints
// every package's count.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// limit is the most code lines one package may hold (STYLE.md: 300 to
// 1,500 lines each).
const limit = 1500

// over lists the packages, by directory from the module root, known to be
// over the limit and waiting for their split. Each entry needs the issue
// that removes it; remove the entry with the split. Nothing else belongs
// here: a package that grows over the limit is split by noun.
var over = map[string]string{}

func main() {
	verbose := flag.Bool("v", false, "print every package's code lines")
	flag.Parse()
	sizes, err := measure(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgsize:", err)
		os.Exit(2)
	}
	dirs := make([]string, 0, len(sizes))
	for d := range sizes {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	failed := false
	for _, d := range dirs {
		n := sizes[d]
		_, allowed := over[d]
		switch {
		case n > limit && !allowed:
			failed = true
			fmt.Printf("%s: %d code lines, over the limit of %d: split it by noun\n", d, n, limit)
		case n > limit:
			if *verbose {
				fmt.Printf("%s: %d code lines (allowed over the limit: %s)\n", d, n, over[d])
			}
		case *verbose:
			fmt.Printf("%s: %d code lines\n", d, n)
		}
	}
	for d := range over {
		if sizes[d] <= limit {
			failed = true
			fmt.Printf("%s: %d code lines, no longer over the limit: remove it from the list in hack/pkgsize\n", d, sizes[d])
		}
	}
	if failed {
		os.Exit(1)
	}
}

// measure returns the code lines per package directory below root, relative
// to root with forward slashes. Folders named testdata or vendor, hidden
// ones and nested modules (another go.mod) are not part of this module.
func measure(root string) (map[string]int, error) {
	sizes := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n, err := codeLines(path, src)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		sizes[filepath.ToSlash(rel)] += n
		return nil
	})
	return sizes, err
}

// codeLines counts the lines of src that hold (part of) a token, or 0 for a
// generated file. A raw string spanning lines counts every line it spans.
func codeLines(name string, src []byte) (int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", name, err)
	}
	if ast.IsGenerated(f) {
		return 0, nil
	}
	file := fset.AddFile(name, fset.Base(), len(src))
	var s scanner.Scanner
	var scanErr error
	s.Init(file, src, func(pos token.Position, msg string) {
		if scanErr == nil {
			scanErr = fmt.Errorf("scan %s: %s", pos, msg)
		}
	}, 0)
	lines := map[int]bool{}
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON && lit == "\n" {
			continue // inserted at a line end, not written
		}
		first := file.Line(pos)
		last := first + bytes.Count([]byte(lit), []byte("\n"))
		for l := first; l <= last; l++ {
			lines[l] = true
		}
	}
	return len(lines), scanErr
}
