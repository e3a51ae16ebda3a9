package front

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
)

// authzPeer is a real gRPC envoy.service.auth.v3.Authorization server on
// 127.0.0.1 that records every CheckRequest and answers what the test case
// says. It is a test double of the peer, not of anything in this package: the
// real authz server is being written concurrently in package authz, and these
// tests pin down the front's half of the contract on their own.
type authzPeer struct {
	authv3.UnimplementedAuthorizationServer
	answer func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)

	mu  sync.Mutex
	got []*authv3.CheckRequest
}

func (p *authzPeer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	p.mu.Lock()
	p.got = append(p.got, req)
	p.mu.Unlock()
	return p.answer(ctx, req)
}

func (p *authzPeer) requests() []*authv3.CheckRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*authv3.CheckRequest(nil), p.got...)
}

// startAuthz serves answer over real gRPC and returns a client dialled to it.
func startAuthz(t *testing.T, answer func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)) (*authzPeer, authv3.AuthorizationClient) {
	t.Helper()
	p := &authzPeer{answer: answer}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, p)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return p, dial(t, lis.Addr().String())
}

func dial(t *testing.T, addr string) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// allow answers OK with ok (which may be nil).
func allow(ok *authv3.OkHttpResponse) func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		r := &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}
		if ok != nil {
			r.HttpResponse = &authv3.CheckResponse_OkResponse{OkResponse: ok}
		}
		return r, nil
	}
}

// seen is one request as the upstream received it.
type seen struct {
	method, target, host string
	header               http.Header
	body                 string
}

// upstream is a real HTTP server recording what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func startUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "upstream ok") }
	}
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(b)})
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

var testNow = time.Date(2026, 11, 21, 10, 0, 0, 123, time.UTC)

// startFront runs the front over client in front of up.
func startFront(t *testing.T, c Config, client authv3.AuthorizationClient, up *upstream) *httptest.Server {
	t.Helper()
	s, _ := startFrontLog(t, c, client, up)
	return s
}

// startFrontLog is startFront, also returning what the front logs.
func startFrontLog(t *testing.T, c Config, client authv3.AuthorizationClient, up *upstream) (*httptest.Server, *syncbuf.Buffer) {
	t.Helper()
	return startFrontChecker(t, c, GRPC(client), up)
}

// startFrontChecker is startFrontLog with any Checker: authz in process.
func startFrontChecker(t *testing.T, c Config, checker Checker, up *upstream) (*httptest.Server, *syncbuf.Buffer) {
	t.Helper()
	c.Upstream = up.URL
	logs := &syncbuf.Buffer{}
	g, err := New(c, Deps{Checker: checker, Now: func() time.Time { return testNow },
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(g.Handler())
	t.Cleanup(s.Close)
	return s, logs
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func newRequest(t *testing.T, method, url, body string, header map[string][]string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

const mcpBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{}}}`

func TestCheckRequest(t *testing.T) {
	up := startUpstream(t, nil)
	tests := []struct {
		name        string
		cfg         Config
		method      string
		target      string
		body        string
		header      map[string][]string
		wantHeaders map[string]string // without x-request-id
		wantBody    string
		wantRaw     []byte
	}{
		{
			name:   "post with body",
			method: http.MethodPost,
			target: "/mcp?a=1&b=%20x",
			body:   mcpBody,
			header: map[string][]string{
				"Content-Type":              {"application/json"},
				"Authorization":             {"Bearer t0ken"},
				"X-Mixed-CASE":              {"one", "two"},
				"X-Envoy-Auth-Partial-Body": {"true"}, // the client's copy never reaches authz
				"Connection":                {"x-hop"},
				"X-Hop":                     {"dropped"},
				"Mcp-Session-Id":            {"abc"},
				"X-Request-Id":              {"client-chosen"}, // regenerated, as at an edge Envoy
				"X-Forwarded-Proto":         {"https"},         // set from the connection
			},
			wantHeaders: map[string]string{
				":method":                   "POST",
				":path":                     "/mcp?a=1&b=%20x",
				":scheme":                   "http",
				"content-type":              "application/json",
				"authorization":             "Bearer t0ken",
				"x-mixed-case":              "one,two",
				"mcp-session-id":            "abc",
				"content-length":            strconv.Itoa(len(mcpBody)),
				"accept-encoding":           "gzip",
				"user-agent":                "Go-http-client/1.1",
				"x-forwarded-proto":         "http",
				"x-forwarded-for":           "127.0.0.1",
				"x-envoy-auth-partial-body": "false",
			},
			wantBody: mcpBody,
		},
		{
			name:   "get without body",
			method: http.MethodGet,
			target: "/mcp",
			header: map[string][]string{"Accept": {"text/event-stream"}, "X-Forwarded-For": {"10.0.0.1"}},
			wantHeaders: map[string]string{
				":method":           "GET",
				":path":             "/mcp",
				":scheme":           "http",
				"accept":            "text/event-stream",
				"accept-encoding":   "gzip",
				"user-agent":        "Go-http-client/1.1",
				"x-forwarded-proto": "http",
				"x-forwarded-for":   "10.0.0.1, 127.0.0.1",
			},
		},
		{
			name:   "delete",
			method: http.MethodDelete,
			target: "/mcp",
			header: map[string][]string{"Mcp-Session-Id": {"abc"}},
			wantHeaders: map[string]string{
				":method":           "DELETE",
				":path":             "/mcp",
				":scheme":           "http",
				"mcp-session-id":    "abc",
				"accept-encoding":   "gzip",
				"user-agent":        "Go-http-client/1.1",
				"x-forwarded-proto": "http",
				"x-forwarded-for":   "127.0.0.1",
			},
		},
		{
			name:   "pack as bytes, invalid utf-8 header sanitized",
			cfg:    Config{PackAsBytes: true},
			method: http.MethodPost,
			target: "/mcp",
			body:   "\xff\xfe{}",
			header: map[string][]string{"X-Bin": {"a\xffb"}},
			wantHeaders: map[string]string{
				":method":                   "POST",
				":path":                     "/mcp",
				":scheme":                   "http",
				"x-bin":                     "a!b",
				"content-length":            "4",
				"accept-encoding":           "gzip",
				"user-agent":                "Go-http-client/1.1",
				"x-forwarded-proto":         "http",
				"x-forwarded-for":           "127.0.0.1",
				"x-envoy-auth-partial-body": "false",
			},
			wantRaw: []byte("\xff\xfe{}"),
		},
		{
			name:   "invalid utf-8 body sanitized",
			method: http.MethodPost,
			target: "/mcp",
			body:   "{\xff}",
			wantHeaders: map[string]string{
				":method":                   "POST",
				":path":                     "/mcp",
				":scheme":                   "http",
				"content-length":            "3",
				"accept-encoding":           "gzip",
				"user-agent":                "Go-http-client/1.1",
				"x-forwarded-proto":         "http",
				"x-forwarded-for":           "127.0.0.1",
				"x-envoy-auth-partial-body": "false",
			},
			wantBody: "{!}",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peer, client := startAuthz(t, allow(nil))
			tc.cfg.ContextExtensions = map[string]string{"mcp-server": "mcp-test/kubernetes-mcp"}
			front := startFront(t, tc.cfg, client, up)
			resp, _ := do(t, newRequest(t, tc.method, front.URL+tc.target, tc.body, tc.header))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			got := peer.requests()
			if len(got) != 1 {
				t.Fatalf("%d checks, want 1", len(got))
			}
			a := got[0].GetAttributes()
			h := a.GetRequest().GetHttp()
			host := strings.TrimPrefix(front.URL, "http://")
			want := map[string]string{":authority": host}
			for k, v := range tc.wantHeaders {
				want[k] = v
			}
			headers := h.GetHeaders()
			id := headers["x-request-id"]
			delete(headers, "x-request-id")
			if diff := cmp.Diff(want, headers); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if len(id) != 36 || h.GetId() != id {
				t.Errorf("id %q, x-request-id %q: want one generated UUID", h.GetId(), id)
			}
			if s := up.seen(); len(s) == 0 || s[len(s)-1].header.Get("X-Request-Id") != id {
				t.Errorf("upstream x-request-id differs from the checked %q", id)
			}
			type fields struct {
				Method, Path, Host, Scheme, Protocol, Body string
				Raw                                        []byte
				Size                                       int64
				Ext                                        map[string]string
				Time                                       time.Time
			}
			gotF := fields{h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme(), h.GetProtocol(), h.GetBody(), h.GetRawBody(), h.GetSize(), a.GetContextExtensions(), a.GetRequest().GetTime().AsTime()}
			wantF := fields{tc.method, tc.target, host, "http", "HTTP/1.1", tc.wantBody, tc.wantRaw, int64(len(tc.body)), map[string]string{"mcp-server": "mcp-test/kubernetes-mcp"}, testNow}
			if diff := cmp.Diff(wantF, gotF); diff != "" {
				t.Errorf("http attributes (-want +got):\n%s", diff)
			}
			if h.GetHeaderMap() != nil {
				t.Errorf("header_map set without encodeRawHeaders")
			}
			src := a.GetSource().GetAddress().GetSocketAddress()
			dst := a.GetDestination().GetAddress().GetSocketAddress()
			if src.GetAddress() != "127.0.0.1" || src.GetPortValue() == 0 {
				t.Errorf("source %v, want 127.0.0.1 and a port", src)
			}
			if dst.GetAddress()+":"+strconv.Itoa(int(dst.GetPortValue())) != host {
				t.Errorf("destination %v, want %s", dst, host)
			}
			if a.GetMetadataContext() == nil || a.GetRouteMetadataContext() == nil {
				t.Errorf("metadata contexts absent; Envoy sends them empty")
			}
		})
	}
}

func TestCheckRequestRawHeaders(t *testing.T) {
	up := startUpstream(t, nil)
	peer, client := startAuthz(t, allow(nil))
	front := startFront(t, Config{EncodeRawHeaders: true}, client, up)
	do(t, newRequest(t, http.MethodPost, front.URL+"/mcp", "{}", map[string][]string{"X-Two": {"a", "b"}}))
	got := peer.requests()
	if len(got) != 1 {
		t.Fatalf("%d checks, want 1", len(got))
	}
	h := got[0].GetAttributes().GetRequest().GetHttp()
	if h.GetHeaders() != nil {
		t.Errorf("headers map set with encodeRawHeaders: %v", h.GetHeaders())
	}
	var two []string
	partial := ""
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		switch hv.GetKey() {
		case "x-two":
			two = append(two, string(hv.GetRawValue()))
		case partialBodyHeader:
			partial = string(hv.GetRawValue())
		}
	}
	if diff := cmp.Diff([]string{"a", "b"}, two); diff != "" {
		t.Errorf("x-two entries (-want +got):\n%s", diff)
	}
	if partial != "false" {
		t.Errorf("partial body marker %q, want false", partial)
	}
}

func TestCheckRequestHTTP2(t *testing.T) {
	up := startUpstream(t, nil)
	peer, client := startAuthz(t, allow(nil))
	g, err := New(Config{Upstream: up.URL}, Deps{Checker: GRPC(client)})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(g.Handler())
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	req := newRequest(t, http.MethodPost, front.URL+"/mcp", mcpBody, nil)
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("client spoke %s, want HTTP/2", resp.Proto)
	}
	got := peer.requests()
	if len(got) != 1 {
		t.Fatalf("%d checks, want 1", len(got))
	}
	h := got[0].GetAttributes().GetRequest().GetHttp()
	if h.GetProtocol() != "HTTP/2" || h.GetScheme() != "https" || h.GetHeaders()[":scheme"] != "https" || h.GetBody() != mcpBody {
		t.Errorf("protocol %q scheme %q :scheme %q body %q; want HTTP/2, https, https, the body", h.GetProtocol(), h.GetScheme(), h.GetHeaders()[":scheme"], h.GetBody())
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 16
	tests := []struct {
		name        string
		partial     bool
		body        string
		chunked     bool
		wantStatus  int
		wantChecked string // body in the CheckRequest; "-" for no check
		wantPartial string
	}{
		{name: "at the limit", body: strings.Repeat("a", limit), wantStatus: 200, wantChecked: strings.Repeat("a", limit), wantPartial: "false"},
		{name: "over the limit", body: strings.Repeat("a", limit+1), wantStatus: 413, wantChecked: "-"},
		{name: "over the limit, chunked", body: strings.Repeat("a", 3*limit), chunked: true, wantStatus: 413, wantChecked: "-"},
		{name: "partial allowed", partial: true, body: strings.Repeat("a", limit) + strings.Repeat("b", 40), wantStatus: 200, wantChecked: strings.Repeat("a", limit), wantPartial: "true"},
		{name: "partial allowed, chunked", partial: true, chunked: true, body: strings.Repeat("a", limit) + "b", wantStatus: 200, wantChecked: strings.Repeat("a", limit), wantPartial: "true"},
		{name: "partial allowed, under the limit", partial: true, body: "small", wantStatus: 200, wantChecked: "small", wantPartial: "false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, nil)
			peer, client := startAuthz(t, allow(nil))
			front := startFront(t, Config{MaxRequestBytes: limit, AllowPartialMessage: tc.partial}, client, up)
			req := newRequest(t, http.MethodPost, front.URL+"/mcp", "", nil)
			req.Body = io.NopCloser(strings.NewReader(tc.body))
			req.ContentLength = int64(len(tc.body))
			if tc.chunked {
				req.ContentLength = -1
			}
			resp, _ := do(t, req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			got := peer.requests()
			if tc.wantChecked == "-" {
				if len(got) != 0 || len(up.seen()) != 0 {
					t.Fatalf("%d checks and %d upstream requests, want none", len(got), len(up.seen()))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d checks, want 1", len(got))
			}
			h := got[0].GetAttributes().GetRequest().GetHttp()
			if h.GetBody() != tc.wantChecked || h.GetHeaders()[partialBodyHeader] != tc.wantPartial {
				t.Errorf("checked body %q partial %q, want %q %q", h.GetBody(), h.GetHeaders()[partialBodyHeader], tc.wantChecked, tc.wantPartial)
			}
			if s := up.seen(); len(s) != 1 || s[0].body != tc.body {
				t.Errorf("upstream got %+v, want the whole body %q", s, tc.body)
			}
		})
	}
}

func hv(k, v string, a corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: a}
}

func hvAppend(k, v string, appendBool bool) *corev3.HeaderValueOption {
	// Envoy still honours the deprecated field, so the front must too.
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: wrapperspb.Bool(appendBool)} //nolint:staticcheck // see above
}

func TestOKMutations(t *testing.T) {
	ok := &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{
			hv("x-mcp-method", "tools/call", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hv("x-mcp-toolname", "pods_list", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hv("authorization", "Bearer exchanged", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hv("x-multi", "2", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
			hv("x-new", "n", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
			hv("x-absent", "added", corev3.HeaderValueOption_ADD_IF_ABSENT),
			hv("x-present", "ignored", corev3.HeaderValueOption_ADD_IF_ABSENT),
			hv("x-ow-present", "over", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
			hv("x-ow-absent", "never", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
			hvAppend("x-tags", "b", true),
			hvAppend("x-set", "s", false),
			hv("x-set-then-removed", "gone", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hv(":path", "/elsewhere", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		},
		HeadersToRemove:         []string{"x-mcp-servername", "x-mcp-promptname", "x-set-then-removed", ":path", "host"},
		QueryParametersToSet:    []*corev3.QueryParameter{{Key: "b", Value: "2"}},
		QueryParametersToRemove: []string{"drop"},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{
			hv("x-resp", "yes", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			hvAppend("x-up", "ours", true),
		},
	}
	up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Resp", "upstream")
		w.Header().Set("X-Up", "upstream")
		w.Header().Set("Connection", "X-Up-Hop")
		w.Header().Set("X-Up-Hop", "hop-by-hop")
		_, _ = io.WriteString(w, "upstream ok")
	})
	_, client := startAuthz(t, allow(ok))
	front := startFront(t, Config{}, client, up)
	resp, body := do(t, newRequest(t, http.MethodPost, front.URL+"/mcp?drop=1&a=1&b=1", mcpBody, map[string][]string{
		"X-Mcp-Toolname":   {"evil"},
		"X-Mcp-Servername": {"forged/server"},
		"X-Mcp-Promptname": {"forged"},
		"Authorization":    {"Bearer caller"},
		"X-Multi":          {"1"},
		"X-Present":        {"client"},
		"X-Ow-Present":     {"client"},
		"X-Tags":           {"a"},
		"X-Set":            {"client1", "client2"},
		"Connection":       {"X-Secret-Hop"},
		"X-Secret-Hop":     {"hop-by-hop"},
		"Proxy-Connection": {"keep-alive"},
	}))
	if resp.StatusCode != http.StatusOK || body != "upstream ok" {
		t.Fatalf("status %d body %q, want 200 from the upstream", resp.StatusCode, body)
	}
	s := up.seen()
	if len(s) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(s))
	}
	got := s[0]
	want := map[string][]string{
		"X-Mcp-Method":       {"tools/call"},
		"X-Mcp-Toolname":     {"pods_list"},
		"X-Mcp-Servername":   nil,
		"X-Mcp-Promptname":   nil,
		"Authorization":      {"Bearer exchanged"},
		"X-Multi":            {"1", "2"},
		"X-New":              {"n"},
		"X-Absent":           {"added"},
		"X-Present":          {"client"},
		"X-Ow-Present":       {"over"},
		"X-Ow-Absent":        nil,
		"X-Tags":             {"a,b"},
		"X-Set":              {"s"},
		"X-Set-Then-Removed": nil,
		"X-Secret-Hop":       nil, // hop-by-hop: never forwarded
		"Proxy-Connection":   nil,
	}
	for k, w := range want {
		if diff := cmp.Diff(w, got.header[k]); diff != "" {
			t.Errorf("upstream header %s (-want +got):\n%s", k, diff)
		}
	}
	if got.target != "/mcp?a=1&b=2" {
		t.Errorf("upstream target %q, want /mcp?a=1&b=2", got.target)
	}
	if got.body != mcpBody {
		t.Errorf("upstream body %q, want the request body", got.body)
	}
	if got.host != strings.TrimPrefix(front.URL, "http://") {
		t.Errorf("upstream Host %q, want the client's %q", got.host, strings.TrimPrefix(front.URL, "http://"))
	}
	if got.header.Get("X-Request-Id") == "" || got.header.Get("X-Forwarded-Proto") != "http" || got.header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("upstream x-request-id %q x-forwarded-proto %q x-forwarded-for %q", got.header.Get("X-Request-Id"), got.header.Get("X-Forwarded-Proto"), got.header.Get("X-Forwarded-For"))
	}
	if diff := cmp.Diff([]string{"yes"}, resp.Header.Values("X-Resp")); diff != "" {
		t.Errorf("client x-resp (-want +got):\n%s", diff)
	}
	if v := resp.Header.Get("X-Up-Hop"); v != "" {
		t.Errorf("client got the upstream's hop-by-hop X-Up-Hop %q", v)
	}
	if diff := cmp.Diff([]string{"upstream", "ours"}, resp.Header.Values("X-Up")); diff != "" {
		t.Errorf("client x-up (-want +got):\n%s", diff)
	}
}

func TestDenied(t *testing.T) {
	jsonBody := `{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"unauthorized"}}`
	tests := []struct {
		name       string
		resp       *authv3.CheckResponse
		wantStatus int
		wantHeader map[string]string
		wantBody   string
	}{
		{
			name: "401 with resource metadata",
			resp: &authv3.CheckResponse{
				Status: &status.Status{Code: int32(codes.Unauthenticated)},
				HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
					Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
					Headers: []*corev3.HeaderValueOption{
						hv("www-authenticate", `Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp"`, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
						hv("content-type", "application/json", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
					},
					Body: jsonBody,
				}},
			},
			wantStatus: 401,
			wantHeader: map[string]string{
				"Www-Authenticate": `Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp"`,
				"Content-Type":     "application/json",
			},
			wantBody: jsonBody,
		},
		{
			name: "no status means 403, text body",
			resp: &authv3.CheckResponse{
				Status:       &status.Status{Code: int32(codes.PermissionDenied)},
				HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Body: "denied"}},
			},
			wantStatus: 403,
			wantHeader: map[string]string{"Content-Type": "text/plain"},
			wantBody:   "denied",
		},
		{
			name:       "bare denial",
			resp:       &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}},
			wantStatus: 403,
		},
		{
			name: "error response without status",
			resp: &authv3.CheckResponse{
				Status:       &status.Status{Code: int32(codes.Unavailable)},
				HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{Body: "idp down"}},
			},
			wantStatus: 503,
			wantBody:   "idp down",
		},
		{
			name: "ok response under a non-OK status is a denial",
			resp: &authv3.CheckResponse{
				Status:       &status.Status{Code: int32(codes.PermissionDenied)},
				HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
			},
			wantStatus: 403,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, nil)
			_, client := startAuthz(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) { return tc.resp, nil })
			front := startFront(t, Config{}, client, up)
			for _, m := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
				body := ""
				if m == http.MethodPost {
					body = mcpBody
				}
				resp, got := do(t, newRequest(t, m, front.URL+"/mcp", body, nil))
				if resp.StatusCode != tc.wantStatus || got != tc.wantBody {
					t.Errorf("%s: status %d body %q, want %d %q", m, resp.StatusCode, got, tc.wantStatus, tc.wantBody)
				}
				for k, v := range tc.wantHeader {
					if resp.Header.Get(k) != v {
						t.Errorf("%s: header %s %q, want %q", m, k, resp.Header.Get(k), v)
					}
				}
			}
			if n := len(up.seen()); n != 0 {
				t.Errorf("upstream got %d requests, want none", n)
			}
		})
	}
}

func TestAuthzFailure(t *testing.T) {
	// A port nothing listens on: take one and give it back.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := lis.Addr().String()
	_ = lis.Close()

	tests := []struct {
		name       string
		cfg        Config
		answer     func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)
		wantStatus int
		inProcess  bool // only in process
	}{
		{name: "authz down", wantStatus: 503},
		{name: "authz down, status on error 403", cfg: Config{StatusOnError: 403}, wantStatus: 403},
		{
			// authz never answers within the timeout. (Its context ends
			// with the deadline the front propagates; answering OK then
			// would race the front's own deadline: "late allow" below
			// holds that a late OK is not taken.)
			name: "timeout",
			cfg:  Config{Timeout: 50 * time.Millisecond},
			answer: func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantStatus: 503,
		},
		{
			// In process only: over gRPC a server's nil answer arrives as
			// an empty CheckResponse, which is OK, as in Envoy. In process
			// there is no answer at all, and that is not an allow.
			name:      "no answer and no error",
			inProcess: true,
			answer: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return nil, nil
			},
			wantStatus: 503,
		},
		{
			// The answer comes after the timeout: not taken. The
			// check's context ends with the timeout (over gRPC too, by
			// the deadline it carries); the allow is sent after that.
			name: "late allow",
			cfg:  Config{Timeout: 50 * time.Millisecond},
			answer: func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				<-ctx.Done()
				return &authv3.CheckResponse{Status: &status.Status{}}, nil
			},
			wantStatus: 503,
		},
		{
			name: "grpc error",
			answer: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return nil, grpcstatus.Error(codes.Internal, "boom")
			},
			wantStatus: 503,
		},
		{
			name: "invalid header name in the answer",
			answer: allow(&authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
				hv("bad key", "v", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			}}),
			wantStatus: 500,
		},
		{
			name: "invalid header value in the answer",
			answer: allow(&authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
				hv("x-ok", "a\r\nx-injected: 1", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			}}),
			wantStatus: 500,
		},
		{
			name: "unknown append action",
			answer: allow(&authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
				hv("x-ok", "v", corev3.HeaderValueOption_HeaderAppendAction(42)),
			}}),
			wantStatus: 500,
		},
		{
			name: "query parameter needing escapes",
			answer: allow(&authv3.OkHttpResponse{QueryParametersToSet: []*corev3.QueryParameter{
				{Key: "k", Value: "a b&c"},
			}}),
			wantStatus: 500,
		},
	}
	// Each answer is given over gRPC, as Envoy asks, and in process, as serve
	// wires authz beside the front; an unreachable authz exists over gRPC only.
	for _, path := range []string{"grpc", "in process"} {
		for _, tc := range tests {
			if (tc.answer == nil && path == "in process") || (tc.inProcess && path == "grpc") {
				continue
			}
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				up := startUpstream(t, nil)
				var checker Checker
				switch {
				case tc.answer == nil:
					checker = GRPC(dial(t, deadAddr))
				case path == "grpc":
					_, client := startAuthz(t, tc.answer)
					checker = GRPC(client)
				default:
					checker = &authzPeer{answer: tc.answer}
				}
				front, logs := startFrontChecker(t, tc.cfg, checker, up)
				resp, body := do(t, newRequest(t, http.MethodPost, front.URL+"/mcp", mcpBody, map[string][]string{"Authorization": {"Bearer s3cret"}}))
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
				}
				if l := logs.String(); l == "" || strings.Contains(l, "s3cret") {
					t.Errorf("log %q: want the failure logged, without the token", l)
				}
				if body != "" {
					t.Errorf("body %q, want none", body)
				}
				if n := len(up.seen()); n != 0 {
					t.Errorf("upstream got %d requests, want none", n)
				}
			})
		}
	}
}

func TestSSEStreams(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "event: message\ndata: first\n\n")
		_ = http.NewResponseController(w).Flush()
		select { // hold the stream open until the client has read the first event
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "event: message\ndata: second\n\n")
	})
	peer, client := startAuthz(t, allow(nil))
	front := startFront(t, Config{}, client, up)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		t.Run(m, func(t *testing.T) {
			body := ""
			if m == http.MethodPost {
				body = mcpBody
			}
			resp, err := http.DefaultClient.Do(newRequest(t, m, front.URL+"/mcp", body, map[string][]string{"Accept": {"text/event-stream"}}))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			br := bufio.NewReader(resp.Body)
			var first []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("reading the first event: %v", err)
				}
				if line == "\n" {
					break
				}
				first = append(first, strings.TrimSuffix(line, "\n"))
			}
			if diff := cmp.Diff([]string{"event: message", "data: first"}, first); diff != "" {
				t.Errorf("first event (-want +got):\n%s", diff)
			}
			release <- struct{}{} // the upstream is still inside its handler
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			if string(rest) != "event: message\ndata: second\n\n" {
				t.Errorf("rest %q, want the second event", rest)
			}
		})
	}
	if n := len(peer.requests()); n != 2 {
		t.Errorf("%d checks, want 2 (the SSE GET passes authz too)", n)
	}
}

func TestUpstreamDown(t *testing.T) {
	up := startUpstream(t, nil)
	_, client := startAuthz(t, allow(nil))
	front, logs := startFrontLog(t, Config{}, client, up)
	up.Close()
	resp, _ := do(t, newRequest(t, http.MethodPost, front.URL+"/mcp?access_token=s3cret", mcpBody, nil))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if l := logs.String(); !strings.Contains(l, "upstream failed") || strings.Contains(l, "s3cret") {
		t.Errorf("log %q: want the failure logged, without the query", l)
	}
}

func TestStart(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	up := startUpstream(t, nil)
	peer, client := startAuthz(t, allow(nil))
	g, err := New(Config{Listen: addr, Upstream: up.URL}, Deps{Checker: GRPC(client)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	var resp *http.Response
	for range 100 {
		resp, err = http.Post("http://"+addr+"/mcp", "application/json", strings.NewReader(mcpBody))
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(peer.requests()) != 1 {
		t.Errorf("status %d after %d checks, want 200 after 1", resp.StatusCode, len(peer.requests()))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start returned %v after its context ended, want nil", err)
	}
	if _, err := http.Get("http://" + addr + "/mcp"); err == nil {
		t.Errorf("still serving after shutdown")
	}
}

func TestNewErrors(t *testing.T) {
	_, client := startAuthz(t, allow(nil))
	tests := []struct {
		name string
		path string // of the field Validate names
		cfg  Config
	}{
		{name: "no upstream", path: "upstream", cfg: Config{}},
		{name: "relative upstream", path: "upstream", cfg: Config{Upstream: "/mcp"}},
		{name: "upstream with query", path: "upstream", cfg: Config{Upstream: "http://127.0.0.1:1/?a=1"}},
		{name: "ftp upstream", path: "upstream", cfg: Config{Upstream: "ftp://127.0.0.1/"}},
		{name: "negative limit", path: "maxRequestBytes", cfg: Config{Upstream: "http://127.0.0.1:1", MaxRequestBytes: -1}},
		{name: "negative timeout", path: "timeout", cfg: Config{Upstream: "http://127.0.0.1:1", Timeout: -time.Second}},
		{name: "negative body timeout", path: "bodyTimeout", cfg: Config{Upstream: "http://127.0.0.1:1", BodyTimeout: -time.Second}},
		{name: "status on error 200", path: "statusOnError", cfg: Config{Upstream: "http://127.0.0.1:1", StatusOnError: 200}},
		{name: "metadata without resource", path: "resourceMetadata.resource", cfg: Config{Upstream: "http://127.0.0.1:1", ResourceMetadata: &ResourceMetadata{}}},
		{name: "metadata with fragment", path: "resourceMetadata.resource", cfg: Config{Upstream: "http://127.0.0.1:1", ResourceMetadata: &ResourceMetadata{Resource: "http://a/mcp#x"}}},
		{name: "metadata relative server", path: "resourceMetadata.authorizationServers[0]", cfg: Config{Upstream: "http://127.0.0.1:1", ResourceMetadata: &ResourceMetadata{Resource: "http://a/mcp", AuthorizationServers: []string{"/realms/mcp"}}}},
		{name: "metadata query bearer method", path: "resourceMetadata.bearerMethodsSupported[0]", cfg: Config{Upstream: "http://127.0.0.1:1", ResourceMetadata: &ResourceMetadata{Resource: "http://a/mcp", BearerMethodsSupported: []string{"query"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, Deps{Checker: GRPC(client)}); err == nil {
				t.Errorf("New accepted %+v", tc.cfg)
			}
			var fe *field.Error
			if err := tc.cfg.Validate(); !errors.As(err, &fe) || fe.Path != tc.path {
				t.Errorf("Validate = %v, want an error at %s", err, tc.path)
			}
		})
	}
	if _, err := New(Config{Upstream: "http://127.0.0.1:1"}, Deps{}); err == nil {
		t.Errorf("New accepted a nil checker")
	}
	// The in-process authz would silently win over the checker.
	if _, err := New(Config{Upstream: "http://127.0.0.1:1"}, Deps{Checker: GRPC(client), Authz: &authz.Server{}}); err == nil {
		t.Errorf("New accepted both a checker and an in-process authz")
	}
}

func TestSlowBody(t *testing.T) {
	up := startUpstream(t, nil)
	peer, client := startAuthz(t, allow(nil))
	g, err := New(Config{Upstream: up.URL, BodyTimeout: 100 * time.Millisecond}, Deps{Checker: GRPC(client)})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(g.Handler())
	t.Cleanup(front.Close)
	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	// Promise ten bytes, send two, and stall.
	if _, err := io.WriteString(conn, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if len(peer.requests()) != 0 || len(up.seen()) != 0 {
		t.Errorf("a stalled body reached authz or the upstream")
	}
}

// TestShortBody: a body that ends before its Content-Length is refused
// with 400, and nothing of it reaches authz or the upstream.
func TestShortBody(t *testing.T) {
	up := startUpstream(t, nil)
	peer, client := startAuthz(t, allow(nil))
	g, err := New(Config{Upstream: up.URL}, Deps{Checker: GRPC(client)})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(g.Handler())
	t.Cleanup(front.Close)
	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	// Promise ten bytes, send two, and stop writing.
	if _, err := io.WriteString(conn, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if len(peer.requests()) != 0 || len(up.seen()) != 0 {
		t.Errorf("a short body reached authz or the upstream")
	}
}

func TestStartStopsWithOpenStream(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": open\n\n")
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done() // an SSE stream that never ends by itself
	})
	_, client := startAuthz(t, allow(nil))
	g, err := New(Config{Listen: addr, Upstream: up.URL}, Deps{Checker: GRPC(client)})
	if err != nil {
		t.Fatal(err)
	}
	g.shutdownGrace = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Start(ctx) }()
	var resp *http.Response
	for range 100 {
		resp, err = http.Get("http://" + addr + "/mcp")
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != ": open\n" {
		t.Fatalf("stream start %q, %v", line, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return with a stream open")
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("the stream ended cleanly; want it cut at shutdown")
	}
}
