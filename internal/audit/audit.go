// Package audit writes the audit trail: one JSON line per authorization
// decision and per completed upstream call, through one goroutine.
package audit

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// Schema names the version of the event format; every event carries it.
// A field is only ever added to v1; a change of meaning makes v2.
const Schema = "mcp-authz.audit/v1"

// Event kinds.
const (
	KindDecision = "decision" // authz decided a request
	KindUpstream = "upstream" // the router completed a call to a server
)

// Event is one line of the audit trail. It never holds a token or an
// argument value: the exchange is named by its steps' grants and
// endpoints, arguments by their names (and only with ArgumentNames).
type Event struct {
	Schema string    `json:"schema"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	// TraceID is the trace-id of the request's W3C traceparent header.
	TraceID  string `json:"trace_id,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	Subject  string `json:"subject,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Method   string `json:"method,omitempty"`
	Server   string `json:"server,omitempty"`
	Tool     string `json:"tool,omitempty"`
	Prompt   string `json:"prompt,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Name is what another method (completion/complete) names.
	Name string `json:"name,omitempty"`
	// ArgumentNames are the top-level argument names of a tools/call or
	// prompts/get, sorted; only with Config.ArgumentNames.
	ArgumentNames []string `json:"argument_names,omitempty"`
	// Decision is allow or deny (decision events).
	Decision string `json:"decision,omitempty"`
	// Reason is the reason code the client was answered with; Cause the
	// internal reason code when it differs.
	Reason string `json:"reason,omitempty"`
	Cause  string `json:"cause,omitempty"`
	// Status is the HTTP status of a denial, or the upstream's answer.
	Status  int    `json:"status,omitempty"`
	Profile string `json:"profile,omitempty"`
	Target  string `json:"target,omitempty"`
	Steps   []Step `json:"steps,omitempty"`
	// Error is why an upstream call failed without an answer (upstream).
	Error string `json:"error,omitempty"`
	// LatencyMS is the time to decide, or to the upstream's answer headers.
	LatencyMS float64 `json:"latency_ms"`
}

// Step is one step of a token exchange: its grant and token endpoint.
type Step struct {
	Grant    string `json:"grant"`
	Endpoint string `json:"endpoint"`
}

// Config is the audit section.
type Config struct {
	// Output is stdout (default), stderr, or a file path, opened for
	// append with mode 0600 (created if missing).
	Output string `yaml:"output" json:"output"`
	// ArgumentNames adds the names (never the values) of a call's
	// arguments to its decision event. Default false.
	ArgumentNames bool `yaml:"argumentNames" json:"argumentNames"`
	// Required makes the trail fail closed: a request whose event cannot be
	// queued (the queue is full, or the last write failed) is denied 503
	// (audit_unavailable) by authz and not forwarded by the router. Default
	// false: such an event is dropped, counted in
	// mcp_authz_audit_dropped_total and logged, and the request proceeds.
	Required bool `yaml:"required" json:"required"`
	// Buffer is how many events wait for the writer at most. Default 4096.
	Buffer int `yaml:"buffer" json:"buffer"`
}

// Validate reports each field at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.Buffer < 0 {
		errs = append(errs, field.Errorf("buffer", "%d: must not be negative", c.Buffer))
	}
	return errors.Join(errs...)
}

func (e *Event) marshal() ([]byte, error) {
	e.Schema = Schema
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
