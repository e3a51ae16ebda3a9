package authz

import (
	"net/http"
	"strconv"
)

// Body is the JSON-RPC error answer of a denial, nil when allowed. It
// carries the request id and the reason code, never error text: the same
// body for an unknown tool and a forbidden one. It is sent with
// content-type application/json and the status of the denial.
func (d *Decision) Body() []byte {
	if d.Allow {
		return nil
	}
	b := make([]byte, 0, 160)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if len(d.ID) > 0 {
		b = append(b, d.ID...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(d.Code), 10)
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, message(d.Status))
	b = append(b, `,"data":{"reason":`...)
	b = strconv.AppendQuote(b, d.Reason)
	return append(b, "}}}"...)
}

func message(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusRequestEntityTooLarge:
		return "request too large"
	case http.StatusServiceUnavailable:
		return "service unavailable"
	case http.StatusInternalServerError:
		return "internal error"
	default:
		return "invalid request"
	}
}
