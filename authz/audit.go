package authz

import (
	"net/http"
	"slices"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// ReasonAuditUnavailable denies a request whose audit event could not be
// written while the audit trail is required (audit.required).
const ReasonAuditUnavailable = "audit_unavailable"

// caller notes, for the audit trail and the decision log, who sent the
// request, whatever the decision: denials after authentication name the
// caller too.
func (d *Decision) caller(c *call) {
	if c.caller == nil {
		return
	}
	if d.issuer == "" {
		d.issuer, d.subject = c.caller.Issuer, c.caller.Subject
	}
	for _, claim := range [...]string{"azp", "client_id"} {
		if v, ok := c.caller.Claims[claim].(string); ok && v != "" {
			d.client = v
			return
		}
	}
}

// audited writes d's audit event. When the trail is required and the event
// cannot be written, the request is denied 503 (audit_unavailable) instead:
// no request passes unrecorded. A denial stays the denial it was.
func (s *Server) audited(r *Request, d *Decision, elapsed time.Duration) *Decision {
	if s.audit == nil {
		return d
	}
	err := s.audit.Write(s.auditEvent(r, d, elapsed))
	if err == nil || !s.audit.Required() || !d.Allow {
		return d
	}
	denied := deny(http.StatusServiceUnavailable, ReasonAuditUnavailable, codeUnavailable)
	denied.ID = s.requestID(r)
	denied.issuer, denied.subject, denied.client = d.issuer, d.subject, d.client
	denied.method, denied.server, denied.name = d.method, d.server, d.name
	return denied
}

// auditEvent is d as an audit event: never a token, and argument names
// only with audit.argumentNames.
func (s *Server) auditEvent(r *Request, d *Decision, elapsed time.Duration) *audit.Event {
	e := &audit.Event{
		Time:      s.now().UTC(),
		Kind:      audit.KindDecision,
		Issuer:    d.issuer,
		Subject:   d.subject,
		ClientID:  d.client,
		Method:    d.method,
		Server:    d.server,
		Decision:  "allow",
		Reason:    d.Reason,
		Cause:     d.cause,
		Status:    d.Status,
		Profile:   d.profile,
		Target:    d.target,
		LatencyMS: float64(elapsed.Microseconds()) / 1000,
	}
	if !d.Allow {
		e.Decision = "deny"
	}
	if r != nil {
		e.TraceID = audit.TraceID(r.Headers["traceparent"])
	}
	switch d.method {
	case "tools/call":
		e.Tool = d.name
	case "prompts/get":
		e.Prompt = d.name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		e.Resource = d.name
	default:
		e.Name = d.name
	}
	for _, st := range d.steps {
		e.Steps = append(e.Steps, audit.Step{Grant: st.Grant, Endpoint: st.Endpoint})
	}
	if s.audit.ArgumentNames() && r != nil && (d.method == "tools/call" || d.method == "prompts/get") {
		e.ArgumentNames = s.argumentNames(r.Body)
	}
	return e
}

// argumentNames are the sorted names of the arguments of a single message
// (not a batch); nil when there are none or the body does not parse.
func (s *Server) argumentNames(body []byte) []string {
	if len(body) == 0 || mcpparse.IsBatch(body) {
		return nil
	}
	o := mcpparse.Options{MaxBytes: s.cfg.MaxBodyBytes}
	m, err := mcpparse.Parse(body, o)
	if err != nil || len(m.Arguments) == 0 {
		return nil
	}
	names, err := mcpparse.Names(m.Arguments, o)
	if err != nil {
		return nil
	}
	slices.Sort(names)
	return names
}
