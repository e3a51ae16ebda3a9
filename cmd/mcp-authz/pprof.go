package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// pprofServer serves Go's runtime profiles (net/http/pprof) on addr, which
// must be a loopback address (loopbackAddr): profiles show request paths and
// timings and the goroutine dump shows stacks, so they are never served
// beyond the host.
func pprofServer(addr string, log *slog.Logger) starter {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return httpServer{srv: &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}, log: log, name: "pprof"}
}

// loopbackAddr accepts host:port whose host is a loopback IP address.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("--pprof %q: want a loopback host:port: %v", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return usageErrorf("--pprof %q: want a loopback IP address (127.0.0.1 or [::1]), profiles are never served beyond the host", addr)
	}
	return nil
}
