package router

import (
	"errors"
	"net/http"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/registry"
)

// auditReady refuses a call, 503, when the audit trail is required and its
// event could not be written (the queue is full or the output is failing):
// with audit.required nothing goes upstream unrecorded.
func (r *Router) auditReady(w http.ResponseWriter, c *call) bool {
	a := r.audit
	if a == nil || !a.Required() || a.Ready() {
		return true
	}
	writeError(w, http.StatusServiceUnavailable, c.msg.ID, codeInternal, "audit trail unavailable")
	return false
}

// audited writes the audit event of one completed upstream call: who (from
// the authz assertion), what, the upstream's HTTP status (or why there was
// none) and the time to its answer's headers. Never a token or an argument.
func (r *Router) audited(c *call, srv *registry.Server, name string, resp *http.Response, err error, elapsed time.Duration) {
	a := r.audit
	if a == nil {
		return
	}
	e := &audit.Event{
		Time:      r.now().UTC(),
		Kind:      audit.KindUpstream,
		TraceID:   audit.TraceID(c.req.Header.Get("traceparent")),
		Issuer:    c.claims.Issuer,
		Subject:   c.claims.Subject,
		Method:    c.msg.Method,
		Server:    srv.Name,
		LatencyMS: float64(elapsed.Microseconds()) / 1000,
	}
	switch c.msg.Method {
	case "tools/call":
		e.Tool = name
	case "prompts/get":
		e.Prompt = name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		e.Resource = c.msg.URI
	default:
		e.Name = name
	}
	switch {
	case err == nil:
		e.Status = resp.StatusCode
	case errors.Is(err, errSessionEnded):
		e.Error = "session_ended"
	case errors.Is(err, errUpstreamUnauthorized):
		e.Error = "upstream_unauthorized"
	default:
		e.Error = "upstream_unavailable"
	}
	// A drop is counted and logged by the writer; the answer is on its way.
	_ = a.Write(e)
}
