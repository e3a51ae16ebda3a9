package authz

import (
	"context"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/telemetry"
)

// record counts the decision and writes the decision log
// (telemetry.Recorder).
func (s *Server) record(ctx context.Context, d *Decision, elapsed time.Duration) {
	rec := d.record()
	s.metrics.Record(ctx, &rec, elapsed)
}

// record is what telemetry sees of d.
func (d *Decision) record() telemetry.Record {
	return telemetry.Record{
		Allow: d.Allow, Status: d.Status,
		Reason: d.Reason, Cause: d.cause, Detail: d.detail,
		Issuer: d.issuer, Subject: d.subject, Client: d.client,
		Method: d.method, Server: d.server, Name: d.name,
		Profile: d.profile, Target: d.target, Steps: d.steps,
	}
}
