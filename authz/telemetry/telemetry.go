// Package telemetry is what authz tells of its decisions: the decision
// metrics and log, the audit event, and the spans of a decision and of its
// identity, exchange and policy calls. It sees a decision as a Record:
// never a token, and of the arguments only their names.
package telemetry

import "github.com/mcp-authz/mcp-authz/exchange"

// Record is what one decision was about and who asked.
type Record struct {
	Allow  bool
	Status int // of a denial
	// Reason is the reason code answered; Cause the one behind it, when it
	// differs (log and metric only); Detail why, beyond the reason (log
	// only).
	Reason, Cause, Detail string
	// Issuer, Subject and Client (azp or client_id) name the caller.
	Issuer, Subject, Client string
	// Method, Server and Name are what the request was for.
	Method, Server, Name string
	// Profile, Target and Steps are the exchange that made (or failed to
	// make) the upstream token.
	Profile, Target string
	Steps           []exchange.StepInfo
}
