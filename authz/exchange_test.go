package authz

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// The identity provider and token service have tests of their own against
// real HTTP servers (identity, exchange, integration). Here they are
// consumer-interface doubles, so that what authz hands them can be seen.

type fixedVerifier struct{ id *identity.Identity }

func (v fixedVerifier) Verify(context.Context, string) (*identity.Identity, error) { return v.id, nil }

type recordingExchanger struct {
	mu  sync.Mutex
	got []exchange.Request
}

func (x *recordingExchanger) Exchange(_ context.Context, r exchange.Request) (*exchange.Token, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.got = append(x.got, r)
	return &exchange.Token{AccessToken: "exchanged-for-" + r.Audience, Exchanged: true,
		Claims: map[string]any{"aud": r.Audience}}, nil
}

// TestCheckExchangeRequest: the exchange asks for the server's audience and
// scopes (from its registration), and the answer carries the exchanged token.
func TestCheckExchangeRequest(t *testing.T) {
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:1/mcp", Audience: "kubernetes", Scopes: []string{"openid", "groups"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Default: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	x := &recordingExchanger{}
	s, err := New(Config{}, Deps{
		Registry:  reg,
		Policy:    policy.NewEngine(set),
		Verifier:  fixedVerifier{&identity.Identity{Subject: "alice", Audience: []string{"mcp-gateway"}, Expiry: exp}},
		Exchanger: x,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := s.Decide(t.Context(), checkRequest("POST", toolCall("kube_pods_list"), map[string]string{"authorization": "Bearer caller-token"}))
	set2, _ := okHeaders(t, resp)
	if got := set2["authorization"]; got != "Bearer exchanged-for-kubernetes" {
		t.Errorf("authorization = %q", got)
	}
	want := []exchange.Request{{
		SubjectToken: "caller-token", SubjectExpiry: exp, SubjectAudience: []string{"mcp-gateway"},
		Audience: "kubernetes", Scopes: []string{"openid", "groups"},
	}}
	if diff := cmp.Diff(want, x.got); diff != "" {
		t.Errorf("exchange requests (-want +got):\n%s", diff)
	}
}
