package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/challenge"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// This file holds what authz does with exchange profiles, targets and
// static credentials (registry's servers[].exchange, servers[].targets and
// a registration's credentialRef) and with step-up denials: the rest of
// the decision calls in here.

// CredentialProfile names a registration's static credential (Kuadrant's
// credentialRef) where policies (input.exchange.profile) and the decision
// log name a profile. It is no DNS-1123 label, so no profile of
// exchange.profiles has this name.
const CredentialProfile = "credentialRef"

// upstreamToken is the token for srv: its registration's static credential
// when it has one (with identity and exchange on or off); else, when
// exchange and identity are on, the caller's token exchanged with the
// profile of the target m names (m nil, or a message naming none: the
// server's default target); else, and for a nil srv, nil. A target value
// with no mapping is denied like an unknown tool; one that disagrees with
// its Mcp-Param header is a 400.
func (s *Server) upstreamToken(ctx context.Context, c *call, srv *registry.Server, m *mcpparse.Message) (*exchange.Token, *Decision) {
	if srv == nil || (srv.Credential == nil && (s.xchg == nil || c.caller == nil)) {
		return nil, nil
	}
	name, t, d := targetOf(c.req.Headers, srv, m)
	if d != nil {
		return nil, d
	}
	tok, err := s.tokenFor(ctx, c.raw, c.caller, srv, name, t)
	if err != nil {
		d := exchangeDenial(err)
		d.profile, d.target = profileName(srv, t), name
		return nil, d
	}
	return tok, nil
}

// tokenFor is the token for target name (t) of srv: the registration's
// static credential, in the same kind of Token as a static profile's, or the
// caller's token exchanged with t's profile. registry refuses a server with
// both a credential and a profile or targets.
func (s *Server) tokenFor(ctx context.Context, raw string, id *identity.Identity, srv *registry.Server, name string, t registry.Target) (*exchange.Token, error) {
	if srv.Credential != nil {
		return exchange.StaticToken(srv.Credential.Value(), CredentialProfile, name), nil
	}
	return s.xchg.Exchange(ctx, exchangeRequest(raw, id, srv, name, t))
}

// targetOf is the target of srv that m names by srv's target argument:
// the argument of a tools/call (keys matched folded, as policies see them),
// else the default. Its Decision denies a value with no target (403
// tool_denied, as an unknown tool) and a value that differs from the
// request's Mcp-Param-{argument} header (400, -32020).
func targetOf(h map[string]string, srv *registry.Server, m *mcpparse.Message) (string, registry.Target, *Decision) {
	if srv.Targets == nil {
		name, t, _ := srv.Target("")
		return name, t, nil
	}
	arg := srv.Targets.Argument
	value, present, ok := "", false, true
	if m != nil && m.Method == "tools/call" {
		value, present, ok = argument(m.Arguments, arg)
	}
	if header, sent := h["mcp-param-"+strings.ToLower(arg)]; sent {
		if hv, decoded := mcpparse.DecodeHeader(header); !decoded || !present || hv != value {
			d := deny(http.StatusBadRequest, ReasonHeaderMismatch, mcpparse.CodeHeaderMismatch)
			d.detail = "Mcp-Param header of the target argument differs from the body"
			return "", registry.Target{}, d
		}
	}
	if !ok || (present && value == "") {
		d := deny(http.StatusForbidden, ReasonToolDenied, codeForbidden)
		d.detail = "target argument is not a non-empty string"
		return "", registry.Target{}, d
	}
	name, t, found := srv.Target(value)
	if !found {
		d := deny(http.StatusForbidden, ReasonToolDenied, codeForbidden)
		d.cause, d.detail = ReasonTargetDenied, "no target for the argument's value"
		return "", registry.Target{}, d
	}
	return name, t, nil
}

// argument reads the string argument whose key folds to name's, from the
// arguments mcpparse already read (it refused two keys of one fold); ok is
// false when it is present but not a string.
func argument(raw json.RawMessage, name string) (value string, present, ok bool) {
	v, found := mcpparse.Argument(raw, name)
	if !found {
		return "", false, true
	}
	value, err := mcpparse.String(v)
	if err != nil {
		return "", true, false
	}
	return value, true, true
}

func exchangeRequest(raw string, id *identity.Identity, srv *registry.Server, target string, t registry.Target) exchange.Request {
	return exchange.Request{
		SubjectToken:    raw,
		SubjectExpiry:   id.Expiry,
		SubjectAudience: id.Audience,
		Audience:        srv.Audience,
		Scopes:          srv.Scopes,
		Profile:         t.Exchange,
		Target:          target,
	}
}

func profileName(srv *registry.Server, t registry.Target) string {
	if srv.Credential != nil {
		return CredentialProfile
	}
	if t.Exchange == "" {
		return exchange.DefaultProfile
	}
	return t.Exchange
}

// exchangeDoc holds the policy's exchange document of one message. Allocated
// with the policy input, it costs no allocation of its own for profiles of
// up to two steps.
type exchangeDoc struct {
	e     policy.Exchange
	steps [2]policy.ExchangeStep
}

// fill makes x the exchange document of tok and returns it; nil when no
// profile made tok (or x is nil).
func (x *exchangeDoc) fill(tok *exchange.Token) *policy.Exchange {
	if x == nil || tok == nil || tok.Profile == "" {
		return nil
	}
	steps := x.steps[:0]
	if len(tok.Steps) > len(x.steps) {
		steps = make([]policy.ExchangeStep, 0, len(tok.Steps))
	}
	for _, s := range tok.Steps {
		steps = append(steps, policy.ExchangeStep{Grant: s.Grant, Endpoint: s.Endpoint})
	}
	x.e = policy.Exchange{Profile: tok.Profile, Target: tok.Target, Steps: steps}
	return &x.e
}

// stepUp makes a policy's insufficient_scope denial a step-up challenge
// (MCP authorization, RFC 6750 section 3.1): the scopes the policy asks
// for, never offline_access.
func (s *Server) stepUp(d *Decision, r *Request, pd policy.Decision) {
	if pd.Reason != policy.ReasonInsufficientScope {
		return
	}
	d.Challenge = challenge.InsufficientScope(s.metadataURL(r), pd.Scopes)
}
