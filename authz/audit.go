package authz

import (
	"net/http"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/telemetry"
	"github.com/mcp-authz/mcp-authz/internal/audit"
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
	var traceID string
	var names []string
	if r != nil {
		traceID = audit.TraceID(r.Headers["traceparent"])
		if s.audit.ArgumentNames() && (d.method == "tools/call" || d.method == "prompts/get") {
			names = telemetry.ArgumentNames(r.Body, s.cfg.MaxBodyBytes)
		}
	}
	rec := d.record()
	return telemetry.AuditEvent(&rec, s.now().UTC(), traceID, names, elapsed)
}
