package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-authz/mcp-authz/authz/internal/authztest"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
)

const callerToken = "caller-token"

// newTokenServer builds a Server over testServers with a verifier that
// accepts any token as alice's (or none: identity off) and x as the
// exchanger (nil: exchange off).
func newTokenServer(t *testing.T, identityOn bool, x Exchanger, d Deps, policies ...policy.Policy) *Server {
	t.Helper()
	d.Registry, d.Policy, d.Exchanger = authztest.Registry(t), authztest.Engine(t, policies...), x
	if identityOn {
		d.Verifier = fixedVerifier{&identity.Identity{Subject: "alice", Audience: []string{"mcp-gateway"}, Expiry: time.Now().Add(time.Hour)}}
	}
	s, err := New(Config{}, d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheckUpstreamToken holds the rule of no token passthrough
// (ContextExtensionServer): every kind of request, on a route attached to a
// server (by context extension or by host) and in front of the router, with
// exchange on and off and identity off.
func TestCheckUpstreamToken(t *testing.T) {
	kinds := []struct {
		name     string
		method   string // HTTP
		body     string
		targeted string // the server a targeted message names in router mode
	}{
		{"initialize", "POST", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, ""},
		{"notifications/initialized", "POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, ""},
		{"tools/list", "POST", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, ""},
		{"ping", "POST", `{"jsonrpc":"2.0","id":3,"method":"ping"}`, ""},
		{"response", "POST", `{"jsonrpc":"2.0","id":7,"result":{"action":"accept"}}`, ""},
		{"error response", "POST", `{"jsonrpc":"2.0","id":8,"error":{"code":-1,"message":"no"}}`, ""},
		{"tools/call", "POST", toolCall("kube_pods_list"), "mcp-test/kubernetes-mcp"},
		{"prompts/get", "POST", `{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"kube_p"}}`, "mcp-test/kubernetes-mcp"},
		{"resources/read", "POST", `{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"test://static/resource/1"}}`, "mcp-test/everything"},
		{"resources/subscribe", "POST", `{"jsonrpc":"2.0","id":6,"method":"resources/subscribe","params":{"uri":"test://static/resource/1"}}`, "mcp-test/everything"},
		{"GET", "GET", "", ""},
		{"DELETE", "DELETE", "", ""},
	}
	routes := []struct {
		name   string
		attach func(*Request)
		server string // "" in front of the router
	}{
		{"router", func(*Request) {}, ""},
		{"context extension", func(r *Request) {
			r.ContextExtensions = map[string]string{ContextExtensionServer: "mcp-test/kubernetes-mcp"}
		}, "mcp-test/kubernetes-mcp"},
		{"host", func(r *Request) { r.Host = "tool.example.com" }, "default/mcp-tool"},
	}
	modes := []struct {
		name               string
		identity, exchange bool
	}{
		{"exchange on", true, true},
		{"exchange off", true, false},
		{"identity off", false, true},
		{"identity and exchange off", false, false},
	}
	for _, mode := range modes {
		var x Exchanger
		if mode.exchange {
			x = &recordingExchanger{}
		}
		s := newTokenServer(t, mode.identity, x, Deps{})
		for _, route := range routes {
			for _, kind := range kinds {
				t.Run(mode.name+"/"+route.name+"/"+kind.name, func(t *testing.T) {
					// Tool and prompt names are unprefixed on an attached route.
					body := kind.body
					if route.server != "" {
						body = strings.Replace(body, `"kube_`, `"`, 1)
					}
					req := checkRequest(kind.method, body, map[string]string{"authorization": "Bearer " + callerToken})
					route.attach(req)
					resp := s.Decide(t.Context(), req)
					set, remove := okHeaders(t, resp)
					auth, setsAuth := set["authorization"]
					removesAuth := false
					for _, k := range remove {
						removesAuth = removesAuth || k == "authorization"
					}
					if strings.Contains(auth, callerToken) {
						t.Fatalf("the caller's own token is set: %q", auth)
					}
					// Where the request goes and which token it must carry.
					server := route.server
					if server == "" {
						server = kind.targeted
					}
					switch {
					case mode.identity && mode.exchange && server != "":
						if want := "Bearer exchanged-for-" + server; auth != want || removesAuth {
							t.Errorf("authorization = %q (removed %v), want %q", auth, removesAuth, want)
						}
					case route.server != "":
						if setsAuth || !removesAuth {
							t.Errorf("authorization set %q, removed %v; want it removed and not set", auth, removesAuth)
						}
					default:
						// In front of the router: the caller's token goes to
						// the router, which is ours.
						if setsAuth || removesAuth {
							t.Errorf("authorization set %q, removed %v; want the client's header left to the router", auth, removesAuth)
						}
					}
				})
			}
		}
	}
}

// TestCheckRouteUnknownServer: a route naming a server the registry does not
// hold is denied for every request like an unknown tool, never allowed
// without a token for it.
func TestCheckRouteUnknownServer(t *testing.T) {
	s := newTokenServer(t, true, &recordingExchanger{}, Deps{})
	unknownTool := s.Decide(t.Context(), checkRequest("POST", toolCall("nope_pods_list"), map[string]string{"authorization": "Bearer " + callerToken}))
	for _, tt := range []struct{ name, method, body, id string }{
		{"tools/call", "POST", toolCall("pods_list"), "1"},
		{"initialize", "POST", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, "1"},
		{"tools/list", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "1"},
		{"notification", "POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "null"},
		{"GET", "GET", "", "null"},
		{"DELETE", "DELETE", "", "null"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := checkRequest(tt.method, tt.body, map[string]string{"authorization": "Bearer " + callerToken})
			req.ContextExtensions = map[string]string{ContextExtensionServer: "mcp-test/gone"}
			resp := s.Decide(t.Context(), req)
			status, body, _ := denial(t, resp)
			if status != http.StatusForbidden || body.Error.Code != codeForbidden || body.Error.Data.Reason != ReasonToolDenied || string(body.ID) != tt.id {
				t.Errorf("got %d %d %s id %s, want 403 %d %s id %s", status, body.Error.Code, body.Error.Data.Reason, body.ID, codeForbidden, ReasonToolDenied, tt.id)
			}
			if tt.id == "1" && !bytes.Equal(resp.Body(), unknownTool.Body()) {
				t.Errorf("body %s, want an unknown tool's %s", resp.Body(), unknownTool.Body())
			}
		})
	}
}

// TestUpstreamAuthorization: the token the router sends on its own calls is
// exchanged for the server, or none; never the caller's own.
func TestUpstreamAuthorization(t *testing.T) {
	tests := []struct {
		name               string
		identity, exchange bool
		caller             string
		want               string
		wantErr            bool
	}{
		{"exchange on", true, true, "Bearer " + callerToken, "Bearer exchanged-for-mcp-test/kubernetes-mcp", false},
		{"exchange off", true, false, "Bearer " + callerToken, "", false},
		{"identity off", false, true, "Bearer " + callerToken, "", false},
		{"identity and exchange off", false, false, "Bearer " + callerToken, "", false},
		{"no caller token", true, true, "", "", true},
		{"not a bearer token", true, false, "Basic YWxpY2U6YWxpY2U=", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x Exchanger
			if tt.exchange {
				x = &recordingExchanger{}
			}
			s := newTokenServer(t, tt.identity, x, Deps{})
			got, err := s.UpstreamAuthorization(t.Context(), tt.caller, "mcp-test/kubernetes-mcp")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("UpstreamAuthorization() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if tt.caller != "" && strings.Contains(got, strings.TrimPrefix(tt.caller, "Bearer ")) {
				t.Errorf("UpstreamAuthorization() returned the caller's own token")
			}
		})
	}
}

// refusingExchanger refuses the exchange for every audience but allowed, as a
// token service does for a server the caller may not reach.
type refusingExchanger struct{ allowed string }

func (x refusingExchanger) Exchange(_ context.Context, r exchange.Request) (*exchange.Token, error) {
	if r.Audience != x.allowed {
		return nil, &exchange.RetrieveError{StatusCode: 400, ErrorCode: "access_denied", ErrorDescription: "client not allowed: " + r.Audience}
	}
	return &exchange.Token{AccessToken: "exchanged-for-" + r.Audience, Exchanged: true, Claims: map[string]any{"aud": r.Audience}}, nil
}

// TestCheckDenialsDoNotEnumerateServers: a tool of a registered server the
// token service will not exchange for, a tool of one whose policy fails on
// the caller's token, and a tool of no server get the same answer, byte for
// byte; the decision log and the metric still tell them apart.
func TestCheckDenialsDoNotEnumerateServers(t *testing.T) {
	metrics := prometheus.NewRegistry()
	var logs bytes.Buffer
	s := newTokenServer(t, true, refusingExchanger{allowed: "mcp-test/everything"}, Deps{
		Metrics: metrics,
		Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
	}, policy.Policy{Name: "roles", CEL: `mcp.tool.name in token.resource_access[mcp.server].roles`})
	auth := map[string]string{"authorization": "Bearer " + callerToken}
	answer := func(req *Request) string {
		t.Helper()
		return wire(s.Decide(t.Context(), req))
	}
	onRoute := func(server string, body string) *Request {
		r := checkRequest("POST", body, auth)
		r.ContextExtensions = map[string]string{ContextExtensionServer: server}
		return r
	}
	unknown := answer(checkRequest("POST", toolCall("nope_pods_list"), auth))
	for _, tt := range []struct {
		name, cause string
		req         *Request
	}{
		{"exchange refused", ReasonExchangeDenied, checkRequest("POST", toolCall("kube_pods_list"), auth)},
		{"exchange refused on the server's route", ReasonExchangeDenied, onRoute("mcp-test/kubernetes-mcp", toolCall("pods_list"))},
		{"exchange refused for initialize on the server's route", ReasonExchangeDenied, onRoute("mcp-test/kubernetes-mcp",
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)},
		{"policy error: no roles for the server", policy.ReasonPolicyError, checkRequest("POST", toolCall("ev_echo"), auth)},
		{"unknown server on a route", ReasonToolDenied, onRoute("mcp-test/gone", toolCall("pods_list"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			if got := answer(tt.req); got != unknown {
				t.Errorf("answer differs from an unknown tool's:\n got %q\nwant %q", got, unknown)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("decision log %q: %v", logs.String(), err)
			}
			if line["reason"] != tt.cause {
				t.Errorf("decision log reason = %v, want %s: %s", line["reason"], tt.cause, logs.String())
			}
			if strings.Contains(logs.String(), callerToken) {
				t.Errorf("the decision log holds the caller's token: %s", logs.String())
			}
		})
	}

	// The metric counts each cause under its own label.
	counts := map[string]float64{}
	families, err := metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "mcp_authz_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					counts[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{ReasonToolDenied: 2, ReasonExchangeDenied: 3, policy.ReasonPolicyError: 1}
	for reason, n := range want {
		if counts[reason] != n {
			t.Errorf("mcp_authz_decisions_total{reason=%q} = %v, want %v (all: %v)", reason, counts[reason], n, counts)
		}
	}
}

// TestCheckTokenInQuery: a token in the query string is refused (401
// token_in_query) however its parameter name is encoded, before anything
// else is looked at.
func TestCheckTokenInQuery(t *testing.T) {
	s := newTokenServer(t, true, nil, Deps{})
	tests := []struct {
		name, query, want string
	}{
		{"plain", "access_token=s3cret", ReasonTokenInQuery},
		{"token", "token=s3cret", ReasonTokenInQuery},
		{"percent-encoded a", "%61ccess_token=s3cret", ReasonTokenInQuery},
		{"percent-encoded underscore", "access%5Ftoken=s3cret", ReasonTokenInQuery},
		{"percent-encoded k", "to%6Ben=s3cret", ReasonTokenInQuery},
		{"plus-encoded space", "token+=s3cret", ReasonTokenInQuery},
		{"mixed case", "Access_TOKEN=s3cret", ReasonTokenInQuery},
		{"mixed case and encoded", "%41CCESS%5ftoken=s3cret", ReasonTokenInQuery},
		{"undecodable name", "a=1&to%zken=s3cret", ReasonTokenInQuery},
		{"other parameters", "session=1&tokens=2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := checkRequest("POST", toolCall("kube_pods_list"), map[string]string{"authorization": "Bearer " + callerToken})
			req.Path = "/mcp?" + tt.query
			resp := s.Decide(t.Context(), req)
			if tt.want == "" {
				okHeaders(t, resp)
				return
			}
			status, body, h := denial(t, resp)
			if status != http.StatusUnauthorized || body.Error.Data.Reason != tt.want || !strings.Contains(h.Get("www-authenticate"), "resource_metadata=") {
				t.Errorf("got %d %s %q, want 401 %s with a challenge", status, body.Error.Data.Reason, h.Get("www-authenticate"), tt.want)
			}
		})
	}
}
