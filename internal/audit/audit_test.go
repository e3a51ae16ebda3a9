package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTraceID(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, header, want string
	}{
		{"valid", "00-" + trace + "-00f067aa0ba902b7-01", trace},
		{"empty", "", ""},
		{"upper case", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""},
		{"short", "00-" + trace + "-00f067aa0ba902b7-1", ""},
		{"version 00 with more", "00-" + trace + "-00f067aa0ba902b7-01-x", ""},
		{"later version with more", "01-" + trace + "-00f067aa0ba902b7-01-x", trace},
		{"version ff", "ff-" + trace + "-00f067aa0ba902b7-01", ""},
		{"zero trace", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"zero parent", "00-" + trace + "-0000000000000000-01", ""},
		{"bad separator", "00_" + trace + "-00f067aa0ba902b7-01", ""},
		{"not hex", "00-" + trace[:31] + "g-00f067aa0ba902b7-01", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TraceID(tt.header); got != tt.want {
				t.Errorf("TraceID(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestWriterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte("{\"earlier\":1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Output: path}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- w.Start(ctx) }()
	for _, s := range []string{"a", "b"} {
		if err := w.Write(&Event{Kind: KindDecision, Subject: s, Time: time.Unix(0, 0).UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 || lines[0]["earlier"] == nil {
		t.Fatalf("file holds %d lines (appended after the earlier one?): %s", len(lines), data)
	}
	for i, want := range []string{"a", "b"} {
		l := lines[i+1]
		if l["schema"] != Schema || l["subject"] != want || l["kind"] != KindDecision {
			t.Errorf("line %d = %v", i+1, l)
		}
	}
}

func TestWriterCreatesFile0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.jsonl")
	w, err := New(Config{Output: path}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	w.close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestWriterBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	var out bytes.Buffer
	w, err := New(Config{Buffer: 2}, Deps{Stdout: &out, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	// Start not running: the queue fills and Write never blocks.
	for i := range 2 {
		if err := w.Write(&Event{Kind: KindDecision}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if w.Ready() {
		t.Error("Ready with a full queue")
	}
	for range 3 {
		if err := w.Write(&Event{Kind: KindDecision}); !errors.Is(err, ErrDropped) {
			t.Fatalf("write to a full queue: %v, want ErrDropped", err)
		}
	}
	if got := testutil.ToFloat64(w.dropped); got != 3 {
		t.Errorf("mcp_authz_audit_dropped_total = %v, want 3", got)
	}
	if n, err := testutil.GatherAndCount(reg, "mcp_authz_audit_dropped_total"); err != nil || n != 1 {
		t.Errorf("registered series: %d, %v", n, err)
	}
	// A second Writer on the same registry shares the counter.
	if _, err := New(Config{}, Deps{Stdout: &out, Metrics: reg}); err != nil {
		t.Fatal(err)
	}
}

// failing is an output whose writes fail until ok is set.
type failing struct {
	mu  sync.Mutex
	ok  bool
	buf bytes.Buffer
}

func (f *failing) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ok {
		return 0, errors.New("disk full")
	}
	return f.buf.Write(b)
}

func TestWriterFailingOutput(t *testing.T) {
	out := &failing{}
	w, err := New(Config{Required: true}, Deps{Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Required() {
		t.Fatal("Required() false")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = w.Start(ctx) }()
	if err := w.Write(&Event{Kind: KindDecision, Subject: "lost"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(w.dropped) == 1 })
	if w.Ready() {
		t.Error("Ready while the output fails")
	}
	if err := w.Write(&Event{Kind: KindDecision, Subject: "retried"}); !errors.Is(err, ErrFailing) {
		t.Fatalf("write while failing: %v, want ErrFailing", err)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(w.dropped) == 2 })
	out.mu.Lock()
	out.ok = true
	out.mu.Unlock()
	if err := w.Write(&Event{Kind: KindDecision, Subject: "written"}); !errors.Is(err, ErrFailing) {
		t.Fatalf("first write after recovery is still told of the failure: %v", err)
	}
	waitFor(t, w.Ready)
	if err := w.Write(&Event{Kind: KindDecision, Subject: "next"}); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
