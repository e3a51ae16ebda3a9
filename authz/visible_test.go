package authz

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// TestVisible: the list filter is the policy evaluated as tools/call of each
// target; a repeated filtering is answered from the cache, and a policy
// reload is seen at once.
func TestVisible(t *testing.T) {
	s := newTestServer(t, Config{}, policy.Policy{Name: "no-delete", CEL: `mcp.tool.name != "pods_delete"`})
	targets := []policy.Target{
		{Server: "mcp-test/kubernetes-mcp", Tool: "pods_list"},
		{Server: "mcp-test/kubernetes-mcp", Tool: "pods_delete"},
		{Server: "mcp-test/everything", Tool: "echo"},
	}
	for i := range 2 {
		got, err := s.Visible(t.Context(), "", targets)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]bool{true, false, true}, got); diff != "" {
			t.Errorf("call %d (-want +got):\n%s", i, diff)
		}
	}
	if s.seen.Len() != 1 {
		t.Errorf("cached filterings = %d, want 1", s.seen.Len())
	}
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "echo-only", CEL: `mcp.tool.name == "echo"`}}})
	if err != nil {
		t.Fatal(err)
	}
	s.policy.(*policy.Engine).Store(set)
	got, err := s.Visible(t.Context(), "", targets)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{false, false, true}, got); diff != "" {
		t.Errorf("after a reload (-want +got):\n%s", diff)
	}
}

// tokenVerifier maps each caller token to its subject.
type tokenVerifier map[string]string

func (v tokenVerifier) Verify(_ context.Context, raw string) (*identity.Identity, error) {
	sub, ok := v[raw]
	if !ok {
		return nil, identity.ErrSignature
	}
	return &identity.Identity{Issuer: "https://idp.example", Subject: sub, Expiry: time.Now().Add(time.Hour),
		Claims: map[string]any{"sub": sub}}, nil
}

// TestVisibleEveryKind: prompts, resources and templates are filtered as
// the prompts/get and resources/read that use them, each caller with its
// own identity and exchanged token, and each caller's filtering is cached
// under its own key: one caller's answer never serves another.
func TestVisibleEveryKind(t *testing.T) {
	snap, err := registry.NewSnapshot(testServers)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "own", CEL: `token.aud == mcp.server && (
		(mcp.method == "prompts/get" && mcp.prompt.name == identity.sub + "_report") ||
		(mcp.method == "resources/read" && mcp.resource.uri.startsWith("test://" + identity.sub + "/")) ||
		(mcp.method == "tools/call" && mcp.tool.name == "echo"))`}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{}, Deps{
		Registry:  reg,
		Policy:    policy.NewEngine(set),
		Verifier:  tokenVerifier{"tok-a": "alice", "tok-b": "bob"},
		Exchanger: &recordingExchanger{},
	})
	if err != nil {
		t.Fatal(err)
	}
	const ev = "mcp-test/everything"
	targets := []policy.Target{
		{Server: ev, Tool: "echo"},
		{Server: ev, Prompt: "alice_report"},
		{Server: ev, Prompt: "bob_report"},
		{Server: ev, Resource: "test://alice/notes"},
		{Server: ev, Resource: "test://bob/notes"},
		{Server: ev, Resource: "test://alice/{file}"},
		{Server: ev, Resource: "test://bob/{file}"},
	}
	tests := []struct {
		name   string
		caller string
		want   []bool
	}{
		{name: "alice", caller: "Bearer tok-a", want: []bool{true, true, false, true, false, true, false}},
		{name: "bob", caller: "Bearer tok-b", want: []bool{true, false, true, false, true, false, true}},
		{name: "alice again, from the cache", caller: "Bearer tok-a", want: []bool{true, true, false, true, false, true, false}},
		{name: "bob again, from the cache", caller: "Bearer tok-b", want: []bool{true, false, true, false, true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Visible(t.Context(), tt.caller, targets)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if n := s.seen.Len(); n != 2 {
		t.Errorf("cached filterings = %d, want 2 (one per caller)", n)
	}
	if _, err := s.Visible(t.Context(), "Bearer forged", targets); err == nil {
		t.Error("an unknown token was filtered, want an error")
	}
}

// TestVisibleSeesRegistryStore: the cache is keyed by the registry's
// Version, so a server that leaves the registry (its token can no longer be
// exchanged) disappears from the next filtering, and comes back with it.
func TestVisibleSeesRegistryStore(t *testing.T) {
	x := &recordingExchanger{}
	s := newTokenServer(t, true, x, Deps{})
	targets := []policy.Target{
		{Server: "mcp-test/kubernetes-mcp", Tool: "pods_list"},
		{Server: "mcp-test/everything", Tool: "echo"},
	}
	without, err := registry.NewSnapshot(testServers[:1])
	if err != nil {
		t.Fatal(err)
	}
	with, err := registry.NewSnapshot(testServers)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		store *registry.Snapshot // nil: no Store before this step
		want  []bool
	}{
		{name: "both registered", want: []bool{true, true}},
		{name: "everything removed", store: without, want: []bool{true, false}},
		{name: "again, from the cache", want: []bool{true, false}},
		{name: "everything back", store: with, want: []bool{true, true}},
		{name: "the same snapshot stored again", store: with, want: []bool{true, true}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.store != nil {
				s.reg.Store(st.store)
			}
			got, err := s.Visible(t.Context(), "Bearer "+callerToken, targets)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(st.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// One filtering per registry Version seen: the first, and one after each
	// of the three Stores; the repeat was served from the cache.
	if n := s.seen.Len(); n != 4 {
		t.Errorf("cached filterings = %d, want 4", n)
	}
}

// TestVisibleKey: the key tells apart every input that can change an
// answer: the policy set and registry Versions, the caller and each field of
// each target, with no two distinct target lists sharing a key.
func TestVisibleKey(t *testing.T) {
	alice := &identity.Identity{Issuer: "https://idp.example", Subject: "alice"}
	base := func() (uint64, uint64, *identity.Identity, string, []policy.Target) {
		return 7, 9, alice, "Bearer a", []policy.Target{{Server: "ns/a", Tool: "ab"}}
	}
	want := visibleKey(base())
	tests := []struct {
		name   string
		change func(set, snap *uint64, id **identity.Identity, auth *string, ts *[]policy.Target)
	}{
		{"policy set Version", func(set, _ *uint64, _ **identity.Identity, _ *string, _ *[]policy.Target) { *set = 8 }},
		{"registry Version", func(_, snap *uint64, _ **identity.Identity, _ *string, _ *[]policy.Target) { *snap = 10 }},
		{"Versions swapped", func(set, snap *uint64, _ **identity.Identity, _ *string, _ *[]policy.Target) {
			*set, *snap = *snap, *set
		}},
		{"subject", func(_, _ *uint64, id **identity.Identity, _ *string, _ *[]policy.Target) {
			*id = &identity.Identity{Issuer: alice.Issuer, Subject: "bob"}
		}},
		{"issuer", func(_, _ *uint64, id **identity.Identity, _ *string, _ *[]policy.Target) {
			*id = &identity.Identity{Issuer: "https://other.example", Subject: alice.Subject}
		}},
		{"anonymous", func(_, _ *uint64, id **identity.Identity, _ *string, _ *[]policy.Target) { *id = nil }},
		{"token", func(_, _ *uint64, _ **identity.Identity, auth *string, _ *[]policy.Target) { *auth = "Bearer b" }},
		{"tool split into tool and prompt", func(_, _ *uint64, _ **identity.Identity, _ *string, ts *[]policy.Target) {
			*ts = []policy.Target{{Server: "ns/a", Tool: "a", Prompt: "b"}}
		}},
		{"server", func(_, _ *uint64, _ **identity.Identity, _ *string, ts *[]policy.Target) {
			*ts = []policy.Target{{Server: "ns/b", Tool: "ab"}}
		}},
		{"resource", func(_, _ *uint64, _ **identity.Identity, _ *string, ts *[]policy.Target) {
			*ts = []policy.Target{{Server: "ns/a", Resource: "ab"}}
		}},
		{"one more target", func(_, _ *uint64, _ **identity.Identity, _ *string, ts *[]policy.Target) {
			*ts = append(*ts, policy.Target{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, snap, id, auth, ts := base()
			tt.change(&set, &snap, &id, &auth, &ts)
			if visibleKey(set, snap, id, auth, ts) == want {
				t.Error("same key as the base input")
			}
		})
	}
	if visibleKey(base()) != want {
		t.Error("the same input gave another key")
	}
}

// TestVisibleAgreesWithReadOnResources: a resource the router lists for a
// caller is one whose resources/read reaches the server that listed it.
// With exchange on, authz finds the server of a resources/read by
// resourcePrefixes alone and cannot mint a token for a URI none claims, so
// such a resource (or template) is not listed (make run once showed
// server-everything's demo:// resources listed under a test:// prefix,
// none readable); a URI another server's prefixes claim is read there, so
// it is not listed under the server that listed it either.
func TestVisibleAgreesWithReadOnResources(t *testing.T) {
	const (
		ev   = "mcp-test/everything"     // resourcePrefixes [test://]
		kube = "mcp-test/kubernetes-mcp" // none
	)
	for _, tc := range []struct {
		name     string
		exchange Exchanger
	}{
		{"exchange on", &recordingExchanger{}},
		{"exchange off", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenServer(t, true, tc.exchange, Deps{}) // allows everything
			visible := func(server, uri string) bool {
				t.Helper()
				vis, err := s.Visible(t.Context(), "Bearer "+callerToken, []policy.Target{{Server: server, Resource: uri}})
				if err != nil {
					t.Fatal(err)
				}
				return vis[0]
			}
			for _, uri := range []string{"test://a", "demo://a", "demo://t/{id}"} {
				d := s.Decide(t.Context(), post(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"`+uri+`"}}`,
					header("authorization", "Bearer "+callerToken)))
				if vis := visible(ev, uri); vis != d.Allow {
					t.Errorf("%s: visible %v, resources/read allowed %v (%s)", uri, vis, d.Allow, d.Reason)
				}
			}
			// Listed by one server, claimed by another's prefix: a read
			// goes to the other, so it is not listed as the first's.
			if visible(kube, "test://b") {
				t.Error("a resource another server's resourcePrefixes claim is listed under the server that listed it")
			}
			// One no prefix claims is read through the router, which finds
			// its server in the lists, only without exchange.
			if got, want := visible(kube, "kube://pods"), tc.exchange == nil; got != want {
				t.Errorf("a resource no prefix claims: visible %v, want %v", got, want)
			}
		})
	}
}
