package authz

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
)

// Reason codes. Each denial carries exactly one; it is the metric label, the
// decision-log field and the "reason" in the JSON-RPC error body, except
// where the body would tell a client which servers exist: exchange_denied
// (and policy_error) is a metric label and a log field only, and the client
// sees the denial of what it asked for: tool_denied, prompt_denied or
// resource_denied (deniedReason). They never carry raw error text.
const (
	ReasonAllowed          = "allowed"
	ReasonBodyMissing      = "body_missing"
	ReasonBodyTruncated    = "body_truncated"
	ReasonBodyTooLarge     = "body_too_large"
	ReasonParseError       = "parse_error"
	ReasonInvalidRequest   = "invalid_request"
	ReasonBatchRejected    = "batch_rejected"
	ReasonHeaderMismatch   = "header_mismatch"
	ReasonOriginDenied     = "origin_denied"   // Origin present and not allowed
	ReasonHostDenied       = "host_denied"     // Host outside allowedHosts
	ReasonToolDenied       = "tool_denied"     // tools/call, and what targets no tool, prompt or resource
	ReasonPromptDenied     = "prompt_denied"   // prompts/get
	ReasonResourceDenied   = "resource_denied" // resources/read, subscribe, unsubscribe
	ReasonTaskDenied       = "task_denied"     // tasks/get, update, cancel, result
	ReasonTokenMissing     = "token_missing"
	ReasonTokenMalformed   = "token_malformed"
	ReasonTokenInQuery     = "token_in_query"
	ReasonTokenExpired     = "token_expired"
	ReasonTokenNotYetValid = "token_not_yet_valid"
	ReasonIssuerUnknown    = "issuer_unknown"
	ReasonAudienceMismatch = "audience_mismatch"
	ReasonSignatureInvalid = "signature_invalid"
	ReasonAlgorithm        = "algorithm_not_allowed"
	ReasonTokenInvalid     = "token_invalid"
	ReasonIdPUnavailable   = "idp_unavailable"
	ReasonExchangeDenied   = "exchange_denied" // log and metric only; the client sees deniedReason
	ReasonExchangeFailed   = "exchange_failed"
	ReasonTargetDenied     = "target_denied" // log and metric only; the client sees tool_denied
	ReasonInternal         = "internal_error"
)

// JSON-RPC error codes of denials that have no code of their own in
// JSON-RPC 2.0. Parse and validation failures keep mcpparse's codes
// (-32700, -32600, -32602) and header mismatches use MCP's -32020.
const (
	codeUnauthorized = -32001
	codeForbidden    = -32003
	codeUnavailable  = -32004
)

// identityReason maps an identity error to its reason code and HTTP status.
func identityReason(err error) (string, int) {
	switch {
	case errors.Is(err, identity.ErrUnavailable):
		return ReasonIdPUnavailable, http.StatusServiceUnavailable
	case errors.Is(err, identity.ErrMissing):
		return ReasonTokenMissing, http.StatusUnauthorized
	case errors.Is(err, identity.ErrMalformed):
		return ReasonTokenMalformed, http.StatusUnauthorized
	case errors.Is(err, identity.ErrExpired):
		return ReasonTokenExpired, http.StatusUnauthorized
	case errors.Is(err, identity.ErrNotYetValid):
		return ReasonTokenNotYetValid, http.StatusUnauthorized
	case errors.Is(err, identity.ErrIssuer):
		return ReasonIssuerUnknown, http.StatusUnauthorized
	case errors.Is(err, identity.ErrAudience):
		return ReasonAudienceMismatch, http.StatusUnauthorized
	case errors.Is(err, identity.ErrSignature):
		return ReasonSignatureInvalid, http.StatusUnauthorized
	case errors.Is(err, identity.ErrAlgorithm):
		return ReasonAlgorithm, http.StatusUnauthorized
	default:
		return ReasonTokenInvalid, http.StatusUnauthorized
	}
}

// deniedReason is what a client is told when a message of method is
// refused: named after what it asked for, and the same whether that is
// unknown or forbidden, so that denials cannot be used to enumerate tools,
// prompts, resources or servers.
func deniedReason(method string) string {
	switch method {
	case "prompts/get":
		return ReasonPromptDenied
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return ReasonResourceDenied
	case "tasks/get", "tasks/update", "tasks/cancel", "tasks/result":
		return ReasonTaskDenied
	default:
		return ReasonToolDenied
	}
}

// exchangeDenial is the answer to a failed exchange. A refusal by the token
// service (the caller may not reach that server) is answered exactly as an
// unknown tool, 403 tool_denied (the caller names the kind: deniedReason),
// so that a client cannot tell which servers exist; its cause,
// exchange_denied, goes to the decision log and the metric label only.
// Anything else is 503: the service is down or misbehaving.
func exchangeDenial(err error) *Decision {
	var where string // the failing step of a profile, for the log
	var se *exchange.StepError
	if errors.As(err, &se) {
		where = fmt.Sprintf(" (profile %s, step %d: %s at %s)", se.Profile, se.Step, se.Grant, se.Endpoint)
		if se.Step == 0 {
			where = fmt.Sprintf(" (profile %s, final token)", se.Profile)
		}
	}
	var re *exchange.RetrieveError
	if errors.As(err, &re) {
		d := deny(http.StatusForbidden, ReasonToolDenied, codeForbidden)
		d.cause = ReasonExchangeDenied
		d.detail = "token service refused the exchange"
		if re.ErrorCode != "" {
			d.detail += ": " + re.ErrorCode
		}
		d.detail += where
		return d
	}
	d := deny(http.StatusServiceUnavailable, ReasonExchangeFailed, codeUnavailable)
	if errors.Is(err, exchange.ErrUnavailable) {
		d = deny(http.StatusServiceUnavailable, ReasonIdPUnavailable, codeUnavailable)
	}
	if where != "" {
		d.detail = "token service failed" + where
	}
	return d
}

// rpcCode is the JSON-RPC error code of a denial with the given HTTP status.
func rpcCode(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return codeUnauthorized
	case http.StatusForbidden:
		return codeForbidden
	case http.StatusServiceUnavailable:
		return codeUnavailable
	default:
		return -32600
	}
}
