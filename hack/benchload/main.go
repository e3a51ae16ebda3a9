// Command benchload drives go-sdk MCP clients at MCP endpoints for make
// bench, where hey cannot keep sessions: -mode call has -c clients, each on
// its own session, make -n tools/call in all as fast as they are answered;
// -mode sessions has -clients clients each initialize, list tools, call one
// tool (-ramp of them at a time) and hold its session until all have, for
// -hold: all sessions are open at once; with -burst, every client then
// makes one more call, all at the same moment. -protocol is the revision
// the clients speak: 2025-11-25 (sessions) or 2026-07-28 (stateless, no
// session; go-sdk's default); a client that ends up on another counts as an
// error. Client i uses target i modulo their number. It prints one JSON
// object: requests, errors, seconds, and for calls the throughput and the
// 50th and 99th percentile latencies. Benchmark use only.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type target struct{ url, tool string }

type report struct {
	Mode       string  `json:"mode"`
	Protocol   string  `json:"protocol"`
	Clients    int     `json:"clients"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	BurstSecs  float64 `json:"burst_seconds,omitempty"`
	RPS        float64 `json:"rps,omitempty"`
	P50ms      float64 `json:"p50_ms,omitempty"`
	P99ms      float64 `json:"p99_ms,omitempty"`
}

func main() {
	mode := flag.String("mode", "call", "`call` (throughput) or sessions (many clients at once)")
	targets := flag.String("targets", "", "comma-separated `url=tool` pairs")
	c := flag.Int("c", 50, "clients of -mode call")
	n := flag.Int64("n", 20000, "tools/call in all, -mode call")
	clients := flag.Int("clients", 4000, "clients of -mode sessions")
	hold := flag.Duration("hold", 3*time.Second, "how long -mode sessions holds the sessions once all called")
	ramp := flag.Int("ramp", 200, "clients of -mode sessions that initialize, list and call at once; the rest wait their turn, all hold their sessions together")
	burst := flag.Bool("burst", false, "-mode sessions: once all have called, every client calls once more, all at once")
	protocol := flag.String("protocol", "2025-11-25", "MCP `revision` the clients speak: 2025-11-25 (sessions) or 2026-07-28 (stateless)")
	timeout := flag.Duration("timeout", 5*time.Minute, "bound of the whole run")
	flag.Parse()
	if *protocol != "2025-11-25" && *protocol != "2026-07-28" {
		log.Fatalf("benchload: -protocol %q: want 2025-11-25 or 2026-07-28", *protocol)
	}
	var ts []target
	for _, p := range strings.Split(*targets, ",") {
		u, tool, ok := strings.Cut(p, "=")
		if !ok {
			log.Fatalf("benchload: target %q is not url=tool", p)
		}
		ts = append(ts, target{u, tool})
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, 100000
	d := dialer{hc: &http.Client{Transport: tr}, protocol: *protocol}
	var rep report
	switch *mode {
	case "call":
		rep = calls(ctx, d, ts, *c, *n)
	case "sessions":
		rep = sessions(ctx, d, ts, *clients, *ramp, *hold, *burst)
	default:
		log.Fatalf("benchload: unknown mode %q", *mode)
	}
	rep.Protocol = *protocol
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	if rep.Errors > 0 {
		os.Exit(1)
	}
}

// dialer connects go-sdk clients speaking one protocol revision.
type dialer struct {
	hc       *http.Client
	protocol string
}

// connect initializes a session (2025-11-25) or discovers the server
// (2026-07-28), and fails when the server led the client to another
// revision: go-sdk falls back to initialize when server/discover fails, and
// the run would measure the wrong protocol.
func (d dialer) connect(ctx context.Context, t target) (*mcp.ClientSession, error) {
	cl := mcp.NewClient(&mcp.Implementation{Name: "benchload", Version: "1"}, nil)
	cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: t.url, HTTPClient: d.hc, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: d.protocol})
	if err != nil {
		return nil, err
	}
	if v := cs.InitializeResult().ProtocolVersion; v != d.protocol {
		_ = cs.Close()
		return nil, fmt.Errorf("%s: protocol %s, want %s", t.url, v, d.protocol)
	}
	return cs, nil
}

func call(ctx context.Context, cs *mcp.ClientSession, t target) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: t.tool, Arguments: map[string]any{"text": "hello"}})
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("%s: tool error", t.tool)
	}
	return nil
}

type errs struct {
	n     atomic.Int64
	first atomic.Value
}

func (e *errs) add(err error) {
	e.n.Add(1)
	e.first.CompareAndSwap(nil, err.Error())
}

func (e *errs) fill(r *report) {
	r.Errors = e.n.Load()
	if f, ok := e.first.Load().(string); ok {
		r.FirstError = f
	}
}

func calls(ctx context.Context, d dialer, ts []target, c int, n int64) report {
	var (
		left = n
		e    errs
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, n)
	)
	css := make([]*mcp.ClientSession, c)
	for i := range c {
		cs, err := d.connect(ctx, ts[i%len(ts)])
		if err != nil {
			log.Fatalf("benchload: connect: %v", err)
		}
		css[i] = cs
	}
	var remaining atomic.Int64
	remaining.Store(left)
	start := time.Now()
	var wg sync.WaitGroup
	for i, cs := range css {
		wg.Go(func() {
			t := ts[i%len(ts)]
			mine := make([]time.Duration, 0, n/int64(c)+1)
			for remaining.Add(-1) >= 0 {
				t0 := time.Now()
				if err := call(ctx, cs, t); err != nil {
					e.add(err)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, cs := range css {
		_ = cs.Close()
	}
	slices.Sort(lat)
	at := func(p int) float64 { return float64(lat[(len(lat)-1)*p/100]) / 1e6 }
	r := report{Mode: "call", Clients: c, Requests: int64(len(lat)), Seconds: secs, RPS: float64(len(lat)) / secs, P50ms: at(50), P99ms: at(99)}
	e.fill(&r)
	return r
}

func sessions(ctx context.Context, d dialer, ts []target, clients, ramp int, hold time.Duration, burst bool) report {
	var e errs
	turn := make(chan struct{}, max(ramp, 1))
	var requests atomic.Int64
	var called sync.WaitGroup
	called.Add(clients)
	release := make(chan struct{})
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			t := ts[i%len(ts)]
			turn <- struct{}{}
			release1 := sync.OnceFunc(func() { <-turn })
			defer release1()
			done := sync.OnceFunc(called.Done)
			defer done()
			cs, err := d.connect(ctx, t)
			requests.Add(1)
			if err != nil {
				e.add(fmt.Errorf("connect: %w", err))
				return
			}
			defer cs.Close()
			requests.Add(1)
			if _, err := cs.ListTools(ctx, nil); err != nil {
				e.add(fmt.Errorf("list: %w", err))
				return
			}
			requests.Add(1)
			if err := call(ctx, cs, t); err != nil {
				e.add(fmt.Errorf("call: %w", err))
				return
			}
			release1()
			done()
			select {
			case <-release:
			case <-ctx.Done():
				return
			}
			if burst {
				requests.Add(1)
				if err := call(ctx, cs, t); err != nil {
					e.add(fmt.Errorf("burst call: %w", err))
				}
			}
		})
	}
	called.Wait()
	secs := time.Since(start).Seconds()
	fmt.Fprintln(os.Stderr, "benchload: all clients called; holding")
	time.Sleep(hold)
	released := time.Now()
	close(release)
	wg.Wait()
	if ctx.Err() != nil {
		e.add(fmt.Errorf("run: %w", ctx.Err()))
	}
	r := report{Mode: "sessions", Clients: clients, Requests: requests.Load(), Seconds: secs}
	if burst {
		r.BurstSecs = time.Since(released).Seconds()
	}
	e.fill(&r)
	return r
}
