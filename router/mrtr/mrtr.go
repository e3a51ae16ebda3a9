// Package mrtr bridges multi round-trip requests (SEP-2322, MCP 2026-07-28)
// between protocol generations: the messages a router writes and reads for
// them, the sealed requestState of a held call, and the table of calls that
// wait for a client's input.
package mrtr

import (
	"bytes"
	"encoding/json"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Method reports whether method may be answered with an
// InputRequiredResult (SEP-2322, "Supported Requests").
func Method(method string) bool {
	return method == "tools/call" || method == "prompts/get" || method == "resources/read"
}

// Capability is the client capability an input request needs, "" for a
// method that is not one of them.
func Capability(method string) string {
	switch method {
	case "elicitation/create":
		return "elicitation"
	case "sampling/createMessage":
		return "sampling"
	case "roots/list":
		return "roots"
	}
	return ""
}

// ClientDeclared reports whether caps, a client's capabilities, has member
// name.
func ClientDeclared(caps json.RawMessage, opts mcpparse.Options, name string) bool {
	if caps == nil {
		return false
	}
	f, err := mcpparse.Fields(caps, opts, name)
	return err == nil && f[0].Raw != nil && string(f[0].Raw) != "null"
}

// Error is what makes a bridge give up; its text reaches the client.
type Error string

func (e Error) Error() string { return string(e) }

const errMalformed = Error("the server answered a malformed InputRequiredResult")

// InputKey is the key of the one input request a router asks a stateless
// client at a time.
const InputKey = "mcp-authz"

// IDPrefix marks the ids of a router's own requests to a client.
const IDPrefix = "mcpa-input."

// InputRequired is what a server's InputRequiredResult asks: the keys of
// inputRequests and their values, in order, and requestState (a JSON
// string, or nil).
type InputRequired struct {
	Keys     []string
	Requests []json.RawMessage
	State    json.RawMessage
}

// ParseInputRequired reads result, an InputRequiredResult.
func ParseInputRequired(result json.RawMessage, opts mcpparse.Options) (InputRequired, error) {
	f, err := mcpparse.Fields(result, opts, "inputRequests", "requestState")
	if err != nil || (f[0].Raw == nil && f[1].Raw == nil) {
		return InputRequired{}, errMalformed
	}
	var in InputRequired
	if f[0].Raw != nil {
		if in.Keys, err = mcpparse.Names(f[0].Raw, opts); err != nil {
			return InputRequired{}, errMalformed
		}
		reqs, err := mcpparse.Fields(f[0].Raw, opts, in.Keys...)
		if err != nil {
			return InputRequired{}, errMalformed
		}
		for _, r := range reqs {
			in.Requests = append(in.Requests, r.Raw)
		}
	}
	if f[1].Raw != nil {
		if _, err := mcpparse.String(f[1].Raw); err != nil {
			return InputRequired{}, errMalformed
		}
		in.State = f[1].Raw
	}
	return in, nil
}

// ParseRequest reads req, one of inputRequests: its method (one of the
// input methods) and the JSON of its method and params (nil if absent).
func ParseRequest(req json.RawMessage, opts mcpparse.Options) (method string, methodJSON, params json.RawMessage, err error) {
	f, err := mcpparse.Fields(req, opts, "method", "params")
	if err != nil || f[0].Raw == nil {
		return "", nil, nil, errMalformed
	}
	method, err = mcpparse.String(f[0].Raw)
	if err != nil || Capability(method) == "" {
		return "", nil, nil, Error("the server asked for input with a method other than elicitation/create, sampling/createMessage or roots/list")
	}
	return method, f[0].Raw, f[1].Raw, nil
}

// Request is a JSON-RPC request of id with methodJSON and params (omitted
// if nil): an input request asked of a 2025 client.
func Request(id, methodJSON, params json.RawMessage) []byte {
	msg := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	msg = append(append(msg, `,"method":`...), methodJSON...)
	if params != nil {
		msg = append(append(msg, `,"params":`...), params...)
	}
	return append(msg, '}')
}

// Ask is a server's request (method, params) as an input request:
// {"method":…,"params":…}.
func Ask(method string, params json.RawMessage) []byte {
	ask := append(mcpparse.AppendString([]byte(`{"method":`), method), `,"params":`...)
	if params != nil && string(params) != "null" {
		ask = append(ask, params...)
	} else {
		ask = append(ask, "{}"...) // roots/list may come without
	}
	return append(ask, '}')
}

// Result is an InputRequiredResult asking ask under InputKey, with the
// sealed requestState.
func Result(ask []byte, sealed string) json.RawMessage {
	res := append(mcpparse.AppendString([]byte(`{"resultType":"input_required","inputRequests":{`), InputKey), ':')
	res = append(append(res, ask...), `},"requestState":`...)
	return append(mcpparse.AppendString(res, sealed), '}')
}

// ParseResponses reads a stateless client's inputResponses: the answer to
// InputKey, nil if it has none.
func ParseResponses(responses json.RawMessage, opts mcpparse.Options) (json.RawMessage, error) {
	af, err := mcpparse.Fields(responses, opts, InputKey)
	if err != nil {
		return nil, Error("invalid inputResponses")
	}
	answer := af[0].Raw
	if answer != nil {
		if _, err := mcpparse.Fields(answer, opts); err != nil {
			return nil, Error("invalid inputResponses: \"" + InputKey + "\" is not an object")
		}
	}
	return answer, nil
}

// RetryBody is body (a request) with id in place of its id and params
// carrying inputResponses and requestState (state, a JSON string, or nil).
func RetryBody(body, id, answers, state []byte, opts mcpparse.Options) ([]byte, error) {
	f, err := mcpparse.Fields(body, opts, "id", "params")
	if err != nil || f[0].Raw == nil || f[1].Raw == nil {
		return nil, Error("the call cannot be retried")
	}
	params := f[1].Raw
	if pf, err := mcpparse.Fields(params, opts, "inputResponses", "requestState"); err != nil || pf[0].Raw != nil || pf[1].Raw != nil {
		return nil, Error("the request carries inputResponses or requestState, which its protocol revision does not have")
	}
	i := bytes.IndexByte(params, '{') + 1
	p := make([]byte, 0, len(params)+len(answers)+len(state)+40)
	p = append(append(append(p, params[:i]...), `"inputResponses":`...), answers...)
	if state != nil {
		p = append(append(p, `,"requestState":`...), state...)
	}
	if !emptyObject(params) {
		p = append(p, ',')
	}
	p = append(p, params[i:]...)
	// The later span first: the earlier's offset stays true.
	spans := []struct {
		s mcpparse.Span
		v []byte
	}{
		{mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}, id},
		{mcpparse.Span{Start: f[1].Start, End: f[1].Start + len(f[1].Raw)}, p},
	}
	if spans[0].s.Start < spans[1].s.Start {
		spans[0], spans[1] = spans[1], spans[0]
	}
	out := bytes.Clone(body)
	for _, s := range spans {
		out = mcpparse.Splice(out, s.s, s.v)
	}
	return out, nil
}

// emptyObject reports whether obj, a JSON object, has no member.
func emptyObject(obj []byte) bool {
	t := bytes.TrimLeft(obj[1:], " \t\r\n")
	return len(t) > 0 && t[0] == '}'
}
