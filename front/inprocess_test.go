package front

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

// startFrontInProcess is startFront with up's handler served in process
// (Deps.Upstream) instead of over HTTP; up's URL still names the upstream.
func startFrontInProcess(t *testing.T, c Config, client authv3.AuthorizationClient, up *upstream) *httptest.Server {
	t.Helper()
	c.Upstream = up.URL
	g, err := New(c, Deps{Checker: GRPC(client), Upstream: up.Config.Handler, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(g.Handler())
	t.Cleanup(s.Close)
	return s
}

// TestInProcessMatchesProxy: an upstream served in process gets each
// request as the reverse proxy sends it over HTTP, and the client gets the
// same answer: the same mutations, hop-by-hop and X-Forwarded-Host headers
// dropped, the same Host, target and body, the same response headers. Only
// what the HTTP client itself adds on the wire (Accept-Encoding,
// Content-Length, User-Agent) and the per-request id differ.
func TestInProcessMatchesProxy(t *testing.T) {
	ok := &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{
			hv("x-mcp-toolname", "pods_list", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hv("authorization", "Bearer exchanged", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hv("x-multi", "2", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
			hv("connection", "x-from-authz", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
		},
		HeadersToRemove:      []string{"x-mcp-servername"},
		QueryParametersToSet: []*corev3.QueryParameter{{Key: "b", Value: "2"}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{
			hv("x-resp", "yes", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hvAppend("x-up", "ours", true),
		},
	}
	header := map[string][]string{
		"X-Mcp-Servername":    {"forged/server"},
		"X-Mcp-Authz":         {"forged"},
		"Authorization":       {"Bearer caller"},
		"X-Multi":             {"1"},
		"Connection":          {"X-Secret-Hop"},
		"X-Secret-Hop":        {"hop-by-hop"},
		"Proxy-Connection":    {"keep-alive"},
		"Keep-Alive":          {"timeout=5"},
		"Te":                  {"trailers, deflate"},
		"Forwarded":           {"for=192.0.2.1"},
		"X-Forwarded-Host":    {"evil.example"},
		"X-Forwarded-For":     {"192.0.2.9"},
		"X-From-Authz":        {"client"},
		"Proxy-Authorization": {"Basic c2VjcmV0"},
	}
	for _, tc := range []struct {
		name string
		c    Config
	}{
		{name: "client host", c: Config{}},
		{name: "auto host rewrite", c: Config{AutoHostRewrite: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				got        seen
				status     int
				respHeader http.Header
				body       string
			}
			run := func(start func(*testing.T, Config, authv3.AuthorizationClient, *upstream) *httptest.Server) result {
				up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("X-Resp", "upstream")
					w.Header().Set("X-Up", "upstream")
					w.Header().Set("Connection", "X-Up-Hop")
					w.Header().Set("X-Up-Hop", "hop-by-hop")
					w.Header().Set("Keep-Alive", "timeout=1")
					w.WriteHeader(http.StatusCreated)
					_, _ = io.WriteString(w, "upstream ok")
				})
				_, client := startAuthz(t, allow(ok))
				front := start(t, tc.c, client, up)
				resp, body := do(t, newRequest(t, http.MethodPost, front.URL+"/mcp?a=1&b=1", mcpBody, header))
				s := up.seen()
				if len(s) != 1 {
					t.Fatalf("upstream got %d requests, want 1", len(s))
				}
				got := s[0]
				for _, k := range []string{"Accept-Encoding", "Content-Length", "User-Agent", "X-Request-Id"} {
					got.header.Del(k)
				}
				// Hosts differ by port: compare whose they are.
				switch got.host {
				case strings.TrimPrefix(front.URL, "http://"):
					got.host = "front"
				case strings.TrimPrefix(up.URL, "http://"):
					got.host = "upstream"
				}
				rh := resp.Header.Clone()
				for _, k := range []string{"Date", "Content-Length"} {
					rh.Del(k)
				}
				return result{got: got, status: resp.StatusCode, respHeader: rh, body: body}
			}
			proxied := run(startFront)
			inproc := run(startFrontInProcess)
			opts := cmp.AllowUnexported(result{}, seen{})
			if diff := cmp.Diff(proxied, inproc, opts); diff != "" {
				t.Errorf("in process differs from over HTTP (-http +in process):\n%s", diff)
			}
			// And what both do is what the reverse proxy is for.
			for _, k := range []string{"X-Secret-Hop", "Proxy-Connection", "Keep-Alive", "Forwarded", "X-Forwarded-Host", "X-Mcp-Servername", "Proxy-Authorization", "X-From-Authz"} {
				if v, ok := inproc.got.header[k]; ok {
					t.Errorf("upstream got %s %q, want it dropped", k, v)
				}
			}
			if inproc.got.header.Get("Te") != "trailers" || inproc.got.target != "/mcp?a=1&b=2" || inproc.got.body != mcpBody {
				t.Errorf("upstream got Te %q target %q body %q", inproc.got.header.Get("Te"), inproc.got.target, inproc.got.body)
			}
			wantHost := "front"
			if tc.c.AutoHostRewrite {
				wantHost = "upstream"
			}
			if inproc.got.host != wantHost {
				t.Errorf("upstream Host is the %s's, want the %s's", inproc.got.host, wantHost)
			}
			if inproc.status != http.StatusCreated || inproc.respHeader.Get("X-Up-Hop") != "" ||
				!cmp.Equal(inproc.respHeader.Values("X-Up"), []string{"upstream", "ours"}) || inproc.respHeader.Get("X-Resp") != "yes" {
				t.Errorf("client got %d %v", inproc.status, inproc.respHeader)
			}
		})
	}
}

// TestInProcessDenied: a request authz does not allow, or cannot check,
// never reaches the upstream served in process.
func TestInProcessDenied(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)
		want   int
	}{
		{name: "denied", answer: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return &authv3.CheckResponse{
				Status:       &status.Status{Code: int32(codes.PermissionDenied)},
				HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Body: "denied"}},
			}, nil
		}, want: http.StatusForbidden},
		{name: "authz failed", answer: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return nil, context.DeadlineExceeded
		}, want: http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, nil)
			_, client := startAuthz(t, tc.answer)
			front := startFrontInProcess(t, Config{}, client, up)
			resp, _ := do(t, newRequest(t, http.MethodPost, front.URL+"/mcp", mcpBody, map[string][]string{"X-Mcp-Authz": {"forged"}}))
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if s := up.seen(); len(s) != 0 {
				t.Errorf("the upstream was reached: %+v", s)
			}
		})
	}
}

// TestInProcessStreams: an upstream served in process streams its events
// to the client as it writes them, as the reverse proxy does.
func TestInProcessStreams(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		_ = http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "data: last\n\n")
	})
	defer close(release)
	_, client := startAuthz(t, allow(nil))
	front := startFrontInProcess(t, Config{}, client, up)
	resp, err := http.DefaultClient.Do(newRequest(t, http.MethodPost, front.URL+"/mcp", mcpBody, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v, want it before the upstream ends", line, err)
	}
}

// TestInProcessUpstreamPath: an upstream served in process cannot have a
// path prefix to add, so New refuses one rather than ignore it.
func TestInProcessUpstreamPath(t *testing.T) {
	_, err := New(Config{Upstream: "http://127.0.0.1:8081/base"}, Deps{Checker: GRPC(nil), Upstream: http.NotFoundHandler()})
	if err == nil || !strings.Contains(err.Error(), "no path") {
		t.Errorf("New = %v, want an error about the path", err)
	}
}
