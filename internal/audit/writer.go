package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors of Write.
var (
	// ErrDropped: the queue was full; the event is lost and counted in
	// mcp_authz_audit_dropped_total.
	ErrDropped = errors.New("audit: event dropped: queue full")
	// ErrFailing: the event is queued, but the last write failed, so it
	// may be lost too (a failed write is counted as a drop).
	ErrFailing = errors.New("audit: output failing")
)

// Deps are what a Writer uses besides its Config.
type Deps struct {
	// Stdout and Stderr are the outputs "stdout" and "stderr"; nil means
	// os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// Logger logs drops and write failures (never an event's content).
	Logger *slog.Logger
	// Metrics registers mcp_authz_audit_dropped_total; nil keeps it private.
	Metrics prometheus.Registerer
}

// Writer writes events as JSON lines, in the order they were queued, from
// the one goroutine that runs Start. Write never blocks.
type Writer struct {
	cfg     Config
	out     io.Writer
	file    *os.File // nil for stdout and stderr
	queue   chan []byte
	log     *slog.Logger
	dropped prometheus.Counter
	drops   atomic.Uint64
	failing atomic.Bool // the last write failed
}

// New opens the output (a file for append, mode 0600) and returns a Writer;
// run Start to write.
func New(c Config, d Deps) (*Writer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if c.Buffer == 0 {
		c.Buffer = 4096
	}
	w := &Writer{cfg: c, queue: make(chan []byte, c.Buffer), log: d.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	switch c.Output {
	case "", "stdout":
		w.out = d.Stdout
		if w.out == nil {
			w.out = os.Stdout
		}
	case "stderr":
		w.out = d.Stderr
		if w.out == nil {
			w.out = os.Stderr
		}
	default:
		f, err := os.OpenFile(c.Output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit: open output: %w", err)
		}
		w.out, w.file = f, f
	}
	dropped := DroppedCounter()
	r := d.Metrics
	if r == nil {
		r = prometheus.NewRegistry()
	}
	if err := r.Register(dropped); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := prometheus.Collector(nil), false
		if errors.As(err, &are) {
			existing = are.ExistingCollector
			dropped, ok = existing.(prometheus.Counter)
		}
		if !ok {
			w.close()
			return nil, fmt.Errorf("audit: metrics: %w", err)
		}
	}
	w.dropped = dropped
	return w, nil
}

// Required reports the Config's Required switch.
func (w *Writer) Required() bool { return w.cfg.Required }

// ArgumentNames reports the Config's ArgumentNames switch.
func (w *Writer) ArgumentNames() bool { return w.cfg.ArgumentNames }

// Ready reports whether an event would be queued now: the queue has room
// and the last write succeeded.
func (w *Writer) Ready() bool {
	return !w.failing.Load() && len(w.queue) < cap(w.queue)
}

// Write queues e (setting its Schema). It returns ErrDropped, and counts
// and logs the drop, when the queue is full; ErrFailing when it queued e
// but the last write failed (each queued event retries the output).
func (w *Writer) Write(e *Event) error {
	b, err := e.marshal()
	if err != nil {
		w.drop("encode")
		return fmt.Errorf("audit: encode: %w", err)
	}
	select {
	case w.queue <- b:
		if w.failing.Load() {
			return ErrFailing
		}
		return nil
	default:
		w.drop("queue full")
		return ErrDropped
	}
}

// drop counts a lost event and logs the first and every 1000th.
func (w *Writer) drop(why string) {
	w.dropped.Inc()
	if n := w.drops.Add(1); n%1000 == 1 {
		w.log.Error("audit event dropped", "why", why, "dropped", n)
	}
}

// Start writes queued events until ctx ends, then writes what is queued
// and closes the file. A failed write drops its event (counted, logged)
// and Write answers ErrFailing until a later write succeeds.
func (w *Writer) Start(ctx context.Context) error {
	defer w.close()
	for {
		select {
		case b := <-w.queue:
			w.write(b)
		case <-ctx.Done():
			for {
				select {
				case b := <-w.queue:
					w.write(b)
				default:
					return nil
				}
			}
		}
	}
}

func (w *Writer) write(b []byte) {
	if _, err := w.out.Write(b); err != nil {
		if !w.failing.Swap(true) {
			w.log.Error("audit output failing", "error", err)
		}
		w.drop("write failed")
		return
	}
	if w.failing.Swap(false) {
		w.log.Info("audit output recovered")
	}
}

func (w *Writer) close() {
	if w.file != nil {
		_ = w.file.Close()
	}
}

// DroppedCounter is mcp_authz_audit_dropped_total, the count of audit events
// not written. A process without an audit trail exports it too, at zero, so
// that an alert on it never reads an absent series.
func DroppedCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mcp_authz_audit_dropped_total",
		Help: "Audit events not written: the queue was full or the output failed.",
	})
}
