package authz

import (
	"errors"
	"net/http"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
)

// Reason codes. Each denial carries exactly one; it is the metric label, the
// decision-log field and the "reason" in the JSON-RPC error body. They never
// carry raw error text.
const (
	ReasonAllowed          = "allowed"
	ReasonBodyMissing      = "body_missing"
	ReasonBodyTruncated    = "body_truncated"
	ReasonBodyTooLarge     = "body_too_large"
	ReasonParseError       = "parse_error"
	ReasonInvalidRequest   = "invalid_request"
	ReasonBatchRejected    = "batch_rejected"
	ReasonHeaderMismatch   = "header_mismatch"
	ReasonToolDenied       = "tool_denied"
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
	ReasonExchangeDenied   = "exchange_denied"
	ReasonExchangeFailed   = "exchange_failed"
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

// exchangeReason maps a token-exchange error to its reason code and HTTP
// status: a refusal by the token service is 403, anything else 503.
func exchangeReason(err error) (string, int) {
	var re *exchange.RetrieveError
	if errors.As(err, &re) {
		return ReasonExchangeDenied, http.StatusForbidden
	}
	if errors.Is(err, exchange.ErrUnavailable) {
		return ReasonIdPUnavailable, http.StatusServiceUnavailable
	}
	return ReasonExchangeFailed, http.StatusServiceUnavailable
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
