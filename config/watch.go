package config

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.yaml.in/yaml/v3"
)

// Watcher reloads the configuration file when it, or a policy file it
// names, changes. A file that fails to load keeps the previous version in
// force; the error is logged and handed to OnError.
type Watcher struct {
	// Path is the configuration file.
	Path string
	// Apply takes each new version that loads; an error from it also keeps
	// the previous version.
	Apply func(*File) error
	// OnError is told of every version that was refused (a metric, a test).
	OnError func(error)
	// Logger receives a line for each reload.
	Logger *slog.Logger
	// Poll is how often the files are also compared by content, for file
	// systems without notifications. Default 2s.
	Poll time.Duration
	// Loaded is the version the caller applied, as Load returned it: a
	// change made between that Load and Start is applied at Start. Nil: the
	// files as Start finds them are taken as applied.
	Loaded *File
}

// Start watches until ctx ends. Apply is not called for the version loaded
// before Start: the caller applied that one.
func (w *Watcher) Start(ctx context.Context) error {
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	if w.Poll == 0 {
		w.Poll = 2 * time.Second
	}
	// Without notifications (no inotify instance left, say), polling
	// alone keeps the configuration current.
	var events <-chan fsnotify.Event
	var errs <-chan error
	fw, err := newFSWatcher()
	if err != nil {
		w.Logger.Warn("config watch: no file notifications, polling only", "poll", w.Poll, "error", err)
		fw = nil
	} else {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
	}

	watched := map[string]bool{}
	w.watchDirs(fw, watched)
	last := w.digest()
	tick := time.NewTicker(w.Poll)
	defer tick.Stop()
	// Editors and ConfigMap updates replace files in several steps, and a
	// file written in place is empty for a moment: a change, whether
	// notified or polled, is read once settleDelay has passed since it was
	// first seen. The delay is not extended by later events, so that a
	// directory that never stops changing cannot hold a reload back.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	pending := false
	arm := func() {
		if !pending {
			pending = true
			settle.Reset(settleDelay)
		}
	}
	if w.Loaded != nil && w.Loaded.sum != ([32]byte{}) && w.Loaded.sum != last {
		last = w.Loaded.sum // changed since the caller loaded it
		arm()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				return nil
			}
			// Kubernetes swaps a ConfigMap volume through a "..data"
			// symlink, so any change in a watched directory is worth a
			// look; the digest decides.
			arm()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.Logger.Warn("config watch", "error", err)
		case <-tick.C:
			if !pending && w.digest() != last {
				arm()
			}
		case <-settle.C:
			pending = false
			d := w.digest()
			if d == last {
				continue
			}
			last = d
			w.reload()
			w.watchDirs(fw, watched)
		}
	}
}

// newFSWatcher is fsnotify.NewWatcher; a test makes it fail.
var newFSWatcher = fsnotify.NewWatcher

// settleDelay is how long a change is left to complete before it is read.
const settleDelay = 100 * time.Millisecond

func (w *Watcher) reload() {
	f, err := Load(w.Path)
	if err == nil {
		err = w.Apply(f)
	}
	if err != nil {
		w.Logger.Error("config reload refused; the previous configuration stays in force", "path", w.Path, "error", err)
		if w.OnError != nil {
			w.OnError(err)
		}
		return
	}
	w.Logger.Info("config reloaded", "path", w.Path, "servers", len(f.Servers), "policies", len(f.Policies))
}

// files are the configuration file and the policy files it names. It reads
// only the names: compiling happens on reload.
func (w *Watcher) files() []string {
	data, _ := os.ReadFile(w.Path)
	return files(w.Path, data)
}

// digest hashes the content of every watched file.
func (w *Watcher) digest() [32]byte {
	data, err := os.ReadFile(w.Path)
	if err != nil {
		data = nil
	}
	return digest(w.Path, data)
}

// files are the configuration file at path, holding data, and the policy
// files it names.
func files(path string, data []byte) []string {
	files := []string{path}
	var names struct {
		Policies []struct {
			File string `yaml:"file"`
		} `yaml:"policies"`
	}
	if yaml.Unmarshal(data, &names) != nil {
		return files
	}
	f := File{Dir: filepath.Dir(path)}
	for _, p := range names.Policies {
		if p.File != "" {
			files = append(files, f.Path(p.File))
		}
	}
	return files
}

// digest hashes the configuration file at path, holding data, and the
// content of the policy files it names.
func digest(path string, data []byte) [32]byte {
	h := sha256.New()
	for i, p := range files(path, data) {
		b := data
		if i > 0 {
			b, _ = os.ReadFile(p)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func (w *Watcher) watchDirs(fw *fsnotify.Watcher, watched map[string]bool) {
	if fw == nil {
		return
	}
	var dirs []string
	for _, p := range w.files() {
		dirs = append(dirs, filepath.Dir(p))
	}
	slices.Sort(dirs)
	for _, d := range slices.Compact(dirs) {
		if watched[d] {
			continue
		}
		if err := fw.Add(d); err != nil {
			w.Logger.Warn("config watch", "dir", d, "error", err)
			continue
		}
		watched[d] = true
	}
}
