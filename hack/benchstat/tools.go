//go:build tools

// Package tools pins benchstat, with which make bench sets each Go benchmark
// beside the same benchmark built from a baseline commit (BENCH_BASE).
package tools

import _ "golang.org/x/perf/cmd/benchstat"
