package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mcp-authz/mcp-authz/policy"
)

// Two versions of a configuration whose policy decides tools/call of
// "pods_list" differently.
const (
	allowYAML = "policies:\n  - name: v1\n    cel: mcp.tool.name == 'pods_list'\n"
	denyYAML  = "policies:\n  - name: v2\n    cel: mcp.tool.name == 'other'\n"
	badYAML   = "policies:\n  - name: v3\n    cel: mcp.tool.name ==\n"
	fileYAML  = "policies:\n  - name: from-file\n    file: policies/p.cel\n"
)

// waitFor bounds every wait for an event the watcher should cause.
const waitFor = 5 * time.Second

// watch runs a Watcher over path until the test ends and returns the
// versions it applies and the errors it reports.
func watch(t *testing.T, path string, poll time.Duration) (<-chan *File, <-chan error) {
	t.Helper()
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan *File, 10)
	refused := make(chan error, 10)
	w := &Watcher{
		Path:    path,
		Apply:   func(f *File) error { applied <- f; return nil },
		OnError: func(err error) { refused <- err },
		Poll:    poll,
		Loaded:  loaded,
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return applied, refused
}

// decides reports whether f's policies allow tools/call of pods_list.
func decides(t *testing.T, f *File) bool {
	t.Helper()
	set, err := f.PolicySet()
	if err != nil {
		t.Fatal(err)
	}
	in := &policy.Input{MCP: policy.MCP{Method: "tools/call", Tool: &policy.Tool{Name: "pods_list"}}}
	return set.Decide(t.Context(), in).Allow
}

func nextApplied(t *testing.T, applied <-chan *File, refused <-chan error) *File {
	t.Helper()
	select {
	case f := <-applied:
		return f
	case err := <-refused:
		t.Fatalf("reload refused: %v", err)
	case <-time.After(waitFor):
		t.Fatal("no reload applied")
	}
	return nil
}

// quiet checks that nothing is applied nor refused while the watcher has
// several polls and a settle delay to notice a change.
func quiet(t *testing.T, applied <-chan *File, refused <-chan error) {
	t.Helper()
	select {
	case f := <-applied:
		t.Errorf("unexpected reload applied: %+v", f)
	case err := <-refused:
		t.Errorf("unexpected reload refused: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}

// edits replace the configuration file the way different writers do.
var edits = []struct {
	name string
	// setup creates the file at dir/mcp-authz.yaml; nil writes it plainly.
	setup func(t *testing.T, dir, content string)
	edit  func(t *testing.T, dir, content string)
}{
	{
		name: "write in place",
		edit: func(t *testing.T, dir, content string) { write(t, dir, "mcp-authz.yaml", content) },
	},
	{
		name: "rename over",
		edit: func(t *testing.T, dir, content string) {
			tmp := write(t, dir, ".mcp-authz.yaml.swp", content)
			if err := os.Rename(tmp, filepath.Join(dir, "mcp-authz.yaml")); err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		// A Kubernetes ConfigMap volume: mcp-authz.yaml -> ..data/mcp-authz.yaml,
		// ..data -> ..<timestamp>, swapped by renaming a new ..data link over.
		name:  "kubernetes ..data swap",
		setup: func(t *testing.T, dir, content string) { swapData(t, dir, content) },
		edit:  func(t *testing.T, dir, content string) { swapData(t, dir, content) },
	},
}

// swapData writes content as a new ConfigMap version and points ..data at it.
func swapData(t *testing.T, dir, content string) {
	t.Helper()
	version, err := os.MkdirTemp(dir, "..2026_")
	if err != nil {
		t.Fatal(err)
	}
	write(t, version, "mcp-authz.yaml", content)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Symlink(filepath.Join("..data", "mcp-authz.yaml"), filepath.Join(dir, "mcp-authz.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherEdits(t *testing.T) {
	for _, tt := range edits {
		for _, mode := range []struct {
			name string
			poll time.Duration
		}{
			{"notify", time.Hour}, // notifications alone
			{"poll", 50 * time.Millisecond},
		} {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				dir := t.TempDir()
				setup := tt.setup
				if setup == nil {
					setup = func(t *testing.T, dir, content string) { write(t, dir, "mcp-authz.yaml", content) }
				}
				setup(t, dir, allowYAML)
				applied, refused := watch(t, filepath.Join(dir, "mcp-authz.yaml"), mode.poll)

				tt.edit(t, dir, denyYAML)
				if f := nextApplied(t, applied, refused); decides(t, f) || f.Policies[0].Name != "v2" {
					t.Errorf("applied %+v, want v2", f.Policies)
				}

				// A broken edit is refused and not applied...
				tt.edit(t, dir, badYAML)
				select {
				case f := <-applied:
					t.Fatalf("broken version applied: %+v", f.Policies)
				case err := <-refused:
					if err == nil {
						t.Error("OnError(nil)")
					}
				case <-time.After(waitFor):
					t.Fatal("broken version not reported")
				}
				// ...and a later good one is.
				tt.edit(t, dir, allowYAML)
				if f := nextApplied(t, applied, refused); !decides(t, f) {
					t.Errorf("applied %+v, want v1", f.Policies)
				}

				// The same content again is no change.
				tt.edit(t, dir, allowYAML)
				quiet(t, applied, refused)
			})
		}
	}
}

func TestWatcherPolicyFile(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "mcp-authz.yaml", fileYAML)
	write(t, dir, "policies/p.cel", "mcp.tool.name == 'pods_list'\n")
	applied, refused := watch(t, path, 50*time.Millisecond)

	write(t, dir, "policies/p.cel", "mcp.tool.name == 'other'\n")
	if f := nextApplied(t, applied, refused); decides(t, f) {
		t.Error("policy file edit not in the applied version")
	}

	write(t, dir, "policies/p.cel", "mcp.tool.name ==\n")
	select {
	case f := <-applied:
		t.Fatalf("broken policy file applied: %+v", f.Policies)
	case err := <-refused:
		if !strings.Contains(err.Error(), "p.cel") {
			t.Errorf("refusal does not name the policy file: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("broken policy file not reported")
	}

	write(t, dir, "policies/p.cel", "mcp.tool.name == 'pods_list'\n")
	if f := nextApplied(t, applied, refused); !decides(t, f) {
		t.Error("fixed policy file not applied")
	}
}

// TestWatcherNoChange checks that touching files, or changing files the
// configuration does not name, applies nothing.
func TestWatcherNoChange(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "mcp-authz.yaml", fileYAML)
	write(t, dir, "policies/p.cel", "true\n")
	applied, refused := watch(t, path, 50*time.Millisecond)

	now := time.Now()
	for _, p := range []string{path, filepath.Join(dir, "policies/p.cel")} {
		if err := os.Chtimes(p, now, now); err != nil {
			t.Fatal(err)
		}
	}
	write(t, dir, "mcp-authz.yaml", fileYAML)
	write(t, dir, "unrelated.txt", "x")
	write(t, dir, "policies/other.cel", "false\n")
	quiet(t, applied, refused)
}

// TestWatcherSinceLoad checks that a change made after the caller's Load
// but before Start is applied.
func TestWatcherSinceLoad(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "mcp-authz.yaml", allowYAML)
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "mcp-authz.yaml", denyYAML)
	applied := make(chan *File, 1)
	w := &Watcher{Path: path, Loaded: loaded, Poll: time.Hour, Apply: func(f *File) error { applied <- f; return nil }}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = w.Start(ctx) }()
	select {
	case f := <-applied:
		if decides(t, f) {
			t.Errorf("applied %+v, want v2", f.Policies)
		}
	case <-time.After(waitFor):
		t.Fatal("change since Load not applied")
	}
}

// TestWatcherApplyError checks that a version Apply refuses is reported and
// that the next change is tried again.
func TestWatcherApplyError(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "mcp-authz.yaml", allowYAML)
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 10)
	applied := make(chan *File, 10)
	w := &Watcher{
		Path: path, Loaded: loaded, Poll: 50 * time.Millisecond,
		Apply: func(f *File) error {
			if f.Policies[0].Name == "v2" {
				return os.ErrPermission
			}
			applied <- f
			return nil
		},
		OnError: func(err error) { refused <- err },
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = w.Start(ctx) }()

	write(t, dir, "mcp-authz.yaml", denyYAML)
	select {
	case err := <-refused:
		if !errors.Is(err, os.ErrPermission) {
			t.Errorf("OnError(%v), want Apply's error", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Apply error not reported")
	}
	write(t, dir, "mcp-authz.yaml", allowYAML+"# again\n")
	nextApplied(t, applied, refused)
}

func TestWatcherStops(t *testing.T) {
	path := write(t, t.TempDir(), "mcp-authz.yaml", allowYAML)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	w := &Watcher{Path: path, Apply: func(*File) error { return nil }}
	go func() { done <- w.Start(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start = %v, want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Start did not return after ctx ended")
	}
}

// TestWatcherWithoutNotifications checks that polling alone applies edits
// when no file notifications can be had.
func TestWatcherWithoutNotifications(t *testing.T) {
	newFSWatcher = func() (*fsnotify.Watcher, error) { return nil, errors.New("too many open files") }
	t.Cleanup(func() { newFSWatcher = fsnotify.NewWatcher })
	dir := t.TempDir()
	path := write(t, dir, "mcp-authz.yaml", allowYAML)
	applied, refused := watch(t, path, 50*time.Millisecond)
	write(t, dir, "mcp-authz.yaml", denyYAML)
	if f := nextApplied(t, applied, refused); decides(t, f) {
		t.Errorf("applied %+v, want v2", f.Policies)
	}
}
