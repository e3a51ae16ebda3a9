package forward

import (
	"errors"
	"net/http"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// auditReady refuses a call, 503, when the audit trail is required and its
// event could not be written (the queue is full or the output is failing):
// with audit.required nothing goes upstream unrecorded.
func (fw *Forwarder) auditReady(w http.ResponseWriter, c *Call) bool {
	a := fw.audit
	if a == nil || !a.Required() || a.Ready() {
		return true
	}
	WriteError(w, http.StatusServiceUnavailable, c.Msg.ID, CodeInternal, "audit trail unavailable")
	return false
}

// audited writes the audit event of one completed upstream call: who (from
// the authz assertion), what, the upstream's HTTP status (or why there was
// none) and the time to its answer's headers. Never a token or an argument.
func (fw *Forwarder) audited(c *Call, srv *registry.Server, name string, resp *http.Response, err error, elapsed time.Duration) {
	a := fw.audit
	if a == nil || errors.Is(err, errParamMismatch) {
		// A call refused for its Mcp-Param headers: each request the
		// server refused has had its event (sendSession); one the router
		// did not send again, after the client's headers no longer matched
		// the definition read anew, has none.
		return
	}
	e := &audit.Event{
		Time:      fw.now().UTC(),
		Kind:      audit.KindUpstream,
		TraceID:   audit.TraceID(c.Req.Header.Get("Traceparent")),
		Issuer:    c.Claims.Issuer,
		Subject:   c.Claims.Subject,
		Method:    c.Msg.Method,
		Server:    srv.Name,
		LatencyMS: float64(elapsed.Microseconds()) / 1000,
	}
	switch c.Msg.Method {
	case "tools/call":
		e.Tool = name
	case "prompts/get":
		e.Prompt = name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		e.Resource = c.Msg.URI
	default:
		e.Name = name
	}
	switch {
	case err == nil:
		e.Status = resp.StatusCode
	case errors.Is(err, session.ErrEnded):
		e.Error = "session_ended"
	case errors.Is(err, upstream.ErrUnauthorized):
		e.Error = "upstream_unauthorized"
	case errors.As(err, new(*mirrorError)):
		e.Error = "params_unmirrorable" // nothing was sent
	default:
		e.Error = "upstream_unavailable"
	}
	// A drop is counted and logged by the writer; the answer is on its way.
	_ = a.Write(e)
}
