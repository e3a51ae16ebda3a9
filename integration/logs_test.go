//go:build integration

package integration

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// This file holds what reads the processes' output (a syncbuf.Buffer each,
// stdout and stderr as they come): the panic check, and the lines and
// metrics a test looks for.

// goroutineDump matches the start of a Go stack dump.
var goroutineDump = regexp.MustCompile(`(?m)^goroutine \d+ \[`)

// checkNoPanic stops each process (idempotent) and fails the test if its
// output holds a panic or a goroutine dump.
func checkNoPanic(t *testing.T, procs map[string]*proc) {
	t.Helper()
	for name, p := range procs {
		p.stop()
		out := p.out.String()
		if strings.Contains(out, "panic:") || goroutineDump.MatchString(out) {
			t.Errorf("%s panicked:\n%s", name, out)
		}
	}
}

// grep returns the lines of s that contain word.
func grep(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// metric returns the sum of the samples of a metric (all label sets) from
// a Prometheus text page.
func metric(page, name string) float64 {
	var sum float64
	for _, l := range strings.Split(page, "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
