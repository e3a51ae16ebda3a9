package listen

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// owners is the Router of these tests: it routes r://<server>/... to
// ns/<server>; nothing of it opens upstream (Open never does). The router's
// own tests (router/listen_test.go) drive a Stream end to end through the
// whole router against real MCP servers.
type owners struct{ snap *registry.Snapshot }

func (o owners) Owner(uri string) (*registry.Server, bool) { return o.snap.ResolveURI(uri) }
func (owners) FanOut(context.Context, string) []registry.Server {
	return nil
}
func (owners) UpdateAllowed(context.Context, *registry.Server, *mcpparse.Message) bool { return false }
func (owners) UpstreamAuth(context.Context, string) (string, error)                    { return "", nil }
func (owners) Failed(*registry.Server, string, error)                                  {}

// decider answers Visible with vis (or err), and records what it was asked.
type decider struct {
	vis    func(t policy.Target) bool
	short  bool // answer one decision too few
	err    error
	caller string
	asked  []policy.Target
}

func (d *decider) Visible(_ context.Context, caller string, targets []policy.Target) ([]bool, error) {
	d.caller, d.asked = caller, targets
	if d.err != nil {
		return nil, d.err
	}
	out := make([]bool, len(targets))
	for i, t := range targets {
		out[i] = d.vis(t)
	}
	if d.short {
		out = out[1:]
	}
	return out, nil
}

func newConfig(t *testing.T, auth Authorizer) *Config {
	t.Helper()
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "ns/a", Prefix: "a_", URL: "http://127.0.0.1:1/mcp", ResourcePrefixes: []string{"r://a/"}},
		{Name: "ns/b", Prefix: "b_", URL: "http://127.0.0.1:2/mcp", ResourcePrefixes: []string{"r://b/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	return &Config{
		Router: owners{snap: snap}, Registry: reg, Auth: auth, CallerAuth: "Bearer caller",
		Request: mcpparse.Options{MaxBytes: 1 << 20, AnyNumberID: true}, ID: []byte(`"L1"`),
	}
}

func params(filter string) []byte { return []byte(`{"notifications":` + filter + `}`) }

// TestOpenInvalid: a filter that is not what the revision defines is
// ErrInvalidParams, whatever else it holds, and nothing is asked of the
// policy.
func TestOpenInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params string
	}{
		{name: "no params"},
		{name: "no filter", params: `{}`},
		{name: "a null filter", params: `{"notifications":null}`},
		{name: "a filter not an object", params: `{"notifications":[]}`},
		{name: "a flag not a boolean", params: string(params(`{"toolsListChanged":"yes"}`))},
		{name: "a flag null", params: string(params(`{"promptsListChanged":null}`))},
		{name: "a flag differing in case", params: string(params(`{"ToolsListChanged":true}`))},
		{name: "subscriptions not an array", params: string(params(`{"resourceSubscriptions":"r://a/doc"}`))},
		{name: "a subscription not a string", params: string(params(`{"resourceSubscriptions":[{"uri":"r://a/doc"}]}`))},
		{name: "an empty subscription", params: string(params(`{"resourceSubscriptions":[""]}`))},
		{name: "too many subscriptions", params: string(params(`{"resourceSubscriptions":["r://a/doc"` + strings.Repeat(`,"r://a/doc"`, MaxURIs) + `]}`))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &decider{vis: func(policy.Target) bool { return true }}
			var p []byte
			if tc.params != "" {
				p = []byte(tc.params)
			}
			s, err := Open(t.Context(), newConfig(t, d), p)
			if !errors.Is(err, ErrInvalidParams) || s != nil {
				t.Fatalf("Open: %v, %v; want ErrInvalidParams", s, err)
			}
			if d.asked != nil {
				t.Errorf("the policy was asked %v", d.asked)
			}
		})
	}
}

// TestOpenRefused: a subscription to a URI no server has, or one the
// policy does not let the caller read, or any that it cannot decide,
// refuses the whole listen naming the first such URI.
func TestOpenRefused(t *testing.T) {
	deny := func(uri string) func(policy.Target) bool {
		return func(t policy.Target) bool { return t.Resource != uri }
	}
	for _, tc := range []struct {
		name string
		subs string
		d    *decider
		want string
	}{
		{name: "no server has it", subs: `["r://a/doc","r://x/doc"]`, d: &decider{vis: deny("")}, want: "r://x/doc"},
		{name: "no server has it, without a policy", subs: `["r://x/doc"]`, want: "r://x/doc"},
		{name: "the policy denies one", subs: `["r://a/doc","r://b/secret"]`, d: &decider{vis: deny("r://b/secret")}, want: "r://b/secret"},
		{name: "the policy fails", subs: `["r://b/doc","r://a/doc"]`, d: &decider{err: errors.New("down")}, want: "r://a/doc"},
		{name: "the policy answers too few", subs: `["r://a/doc","r://b/doc"]`, d: &decider{vis: deny(""), short: true}, want: "r://a/doc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var auth Authorizer
			if tc.d != nil {
				auth = tc.d
			}
			_, err := Open(t.Context(), newConfig(t, auth), params(`{"toolsListChanged":true,"resourceSubscriptions":`+tc.subs+`}`))
			var refused *RefusedError
			if !errors.As(err, &refused) || refused.URI != tc.want {
				t.Fatalf("Open: %v; want the refusal of %s", err, tc.want)
			}
		})
	}
}

// TestOpenAllowed: an allowed listen asks the policy once, for the caller,
// the reads of its URIs grouped by server; repeated URIs count once, and
// the acknowledgment says what was asked, with the client's id.
func TestOpenAllowed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		auth    bool
		filter  string
		wantAck string
	}{
		{
			name: "with a policy", auth: true,
			filter:  `{"promptsListChanged":true,"toolsListChanged":false,"resourceSubscriptions":["r://b/doc","r://a/doc","r://b/doc"]}`,
			wantAck: `{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"L1"},"notifications":{"promptsListChanged":true,"resourceSubscriptions":["r://b/doc","r://a/doc"]}}}`,
		},
		{
			name: "without a policy", filter: `{"resourcesListChanged":true,"resourceSubscriptions":null}`,
			wantAck: `{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"L1"},"notifications":{"resourcesListChanged":true}}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &decider{vis: func(policy.Target) bool { return true }}
			var auth Authorizer
			if tc.auth {
				auth = d
			}
			s, err := Open(t.Context(), newConfig(t, auth), params(tc.filter))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(s.ack()); got != tc.wantAck {
				t.Errorf("ack\n%s\nwant\n%s", got, tc.wantAck)
			}
			if !tc.auth {
				return
			}
			want := []policy.Target{{Server: "ns/a", Resource: "r://a/doc"}, {Server: "ns/b", Resource: "r://b/doc"}}
			if d.caller != "Bearer caller" || len(d.asked) != len(want) || d.asked[0] != want[0] || d.asked[1] != want[1] {
				t.Errorf("asked %q %v, want %v", d.caller, d.asked, want)
			}
		})
	}
}

// TestMessages: what the client gets is rebuilt with its own id, and the
// graceful closure is the listen request's result.
func TestMessages(t *testing.T) {
	s, err := Open(t.Context(), newConfig(t, nil), params(`{"resourceSubscriptions":["r://a/\"q\""]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{name: "resources/updated", got: s.notification("notifications/resources/updated", `r://a/"q"`),
			want: `{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"L1"},"uri":"r://a/\"q\""}}`},
		{name: "list_changed", got: s.notification("notifications/tools/list_changed", ""),
			want: `{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"L1"}}}`},
		{name: "closure", got: s.complete(),
			want: `{"jsonrpc":"2.0","id":"L1","result":{"resultType":"complete","_meta":{"io.modelcontextprotocol/subscriptionId":"L1"}}}`},
		{name: "a server's filter", got: s.filter(nil, s.urisOf("ns/a")), want: `{"resourceSubscriptions":["r://a/\"q\""]}`},
		{name: "another server's filter", got: s.filter(nil, s.urisOf("ns/b")), want: `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", tc.got, tc.want)
			}
		})
	}
}
