package telemetry

import (
	"slices"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// AuditEvent is d as an audit event at now (UTC): never a token. traceID is
// the request's (audit.TraceID), argumentNames the names of its message's
// arguments when the trail keeps them (ArgumentNames), else nil.
func AuditEvent(d *Record, now time.Time, traceID string, argumentNames []string, elapsed time.Duration) *audit.Event {
	e := &audit.Event{
		Time:          now,
		Kind:          audit.KindDecision,
		Issuer:        d.Issuer,
		Subject:       d.Subject,
		ClientID:      d.Client,
		Method:        d.Method,
		Server:        d.Server,
		Decision:      "allow",
		Reason:        d.Reason,
		Cause:         d.Cause,
		Status:        d.Status,
		Profile:       d.Profile,
		Target:        d.Target,
		LatencyMS:     float64(elapsed.Microseconds()) / 1000,
		TraceID:       traceID,
		ArgumentNames: argumentNames,
	}
	if !d.Allow {
		e.Decision = "deny"
	}
	switch d.Method {
	case "tools/call":
		e.Tool = d.Name
	case "prompts/get":
		e.Prompt = d.Name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		e.Resource = d.Name
	default:
		e.Name = d.Name
	}
	for _, st := range d.Steps {
		e.Steps = append(e.Steps, audit.Step{Grant: st.Grant, Endpoint: st.Endpoint})
	}
	return e
}

// ArgumentNames are the sorted names of the arguments of a single message
// (not a batch) of at most maxBytes; nil when there are none or the body
// does not parse.
func ArgumentNames(body []byte, maxBytes int) []string {
	if len(body) == 0 || mcpparse.IsBatch(body) {
		return nil
	}
	o := mcpparse.Options{MaxBytes: maxBytes}
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
