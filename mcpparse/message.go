package mcpparse

import (
	"fmt"

	"github.com/mcp-authz/mcp-authz/mcpparse/internal/jsonscan"
)

// maxMethod is the longest method accepted, in bytes.
const maxMethod = 256

// params holds what a message's params object says of its target, whatever
// the method: the method may come after the params.
type params struct {
	name, uri, args             []byte // decoded name and uri; raw arguments
	nameKind, uriKind, argsKind byte   // 0 when absent
	nameSpan                    Span   // the name as sent
	cursor, requestID, meta     []byte // as sent; nil when absent
	taskID                      []byte // decoded params.taskId
	taskIDKind                  byte   // 0 when absent
	taskIDSpan                  Span
	ref                         ref // params.ref (completion/complete)
	hasRef                      bool
}

// ref is what params.ref of completion/complete says: a ref/prompt by name
// or a ref/resource by URI (template).
type ref struct {
	typ, name, uri             []byte // decoded
	typKind, nameKind, uriKind byte   // 0 when absent
	nameSpan                   Span
}

// message reads a JSON-RPC message object at depth.
func (p *scanner) message(depth int) (Message, error) {
	var (
		m                   Message
		method              []byte
		pr                  params
		hasVersion, hasMeth bool
		idKind, paramsKind  byte
		hasResult, hasError bool
	)
	if p.Peek() != '{' {
		return Message{}, fmt.Errorf("%w: message is not an object", ErrInvalidRequest)
	}
	empty, err := p.Open(depth, '}')
	if err != nil {
		return Message{}, err
	}
	ks := p.BeginObject()
	for more := !empty; more; {
		k, err := p.Key(&ks)
		if err != nil {
			return Message{}, err
		}
		switch string(k) {
		case "jsonrpc":
			hasVersion = true
			if p.Peek() != '"' {
				return Message{}, fmt.Errorf("%w: jsonrpc is not a string", ErrInvalidRequest)
			}
			v, err := p.Text()
			if err != nil {
				return Message{}, err
			}
			if string(v) != "2.0" {
				return Message{}, fmt.Errorf("%w: jsonrpc is not \"2.0\"", ErrInvalidRequest)
			}
		case "method":
			hasMeth = true
			if p.Peek() != '"' {
				return Message{}, fmt.Errorf("%w: method is not a string", ErrInvalidRequest)
			}
			if method, err = p.Text(); err != nil {
				return Message{}, err
			}
		case "id":
			start := p.Pos
			if idKind, err = p.Value(depth); err != nil {
				return Message{}, err
			}
			switch idKind {
			case '"', jsonscan.KindInt, 'n':
			case jsonscan.KindNumber:
				if !p.AnyNumberID {
					return Message{}, fmt.Errorf("%w: id is not a string or an integer", ErrInvalidRequest)
				}
			default:
				return Message{}, fmt.Errorf("%w: id is not a string or an integer", ErrInvalidRequest)
			}
			m.ID = p.Buf[start:p.Pos]
			m.IDSpan = Span{start, p.Pos}
		case "params":
			if paramsKind = p.Peek(); paramsKind != '{' {
				return Message{}, fmt.Errorf("%w: params is not an object", ErrInvalidParams)
			}
			start := p.Pos
			if err := p.params(depth+1, &pr); err != nil {
				return Message{}, err
			}
			m.Params = p.Buf[start:p.Pos]
		case "result":
			hasResult = true
			if p.Peek() != '{' {
				return Message{}, fmt.Errorf("%w: result is not an object", ErrInvalidRequest)
			}
			start := p.Pos
			if err := p.Object(depth + 1); err != nil {
				return Message{}, err
			}
			m.Result = p.Buf[start:p.Pos]
		case "error":
			hasError = true
			start := p.Pos
			if err := p.errorObject(depth + 1); err != nil {
				return Message{}, err
			}
			m.Error = p.Buf[start:p.Pos]
		default:
			return Message{}, fmt.Errorf("%w: unknown member %.40q", ErrInvalidRequest, k)
		}
		if more, err = p.Next('}'); err != nil {
			return Message{}, err
		}
	}
	p.EndObject(ks)

	if !hasVersion {
		return Message{}, fmt.Errorf("%w: no jsonrpc member", ErrInvalidRequest)
	}
	m.Cursor, m.RequestID, m.Meta = pr.cursor, pr.requestID, pr.meta
	if !hasMeth {
		err = response(&m, idKind, paramsKind != 0, hasResult, hasError)
	} else {
		err = request(&m, method, idKind, hasResult || hasError, paramsKind != 0, &pr)
	}
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

// request completes a message with a method: a request or a notification.
func request(m *Message, method []byte, idKind byte, hasOutcome, hasParams bool, pr *params) error {
	if hasOutcome {
		return fmt.Errorf("%w: method with a result or an error", ErrInvalidRequest)
	}
	var err error
	if m.Method, err = methodName(method); err != nil {
		return err
	}
	switch idKind {
	case 0:
		m.Kind = KindNotification
	case 'n':
		return fmt.Errorf("%w: null id", ErrInvalidRequest)
	default:
		m.Kind = KindRequest
	}
	return target(m, hasParams, pr)
}

// response completes a message without a method: a response or an error.
func response(m *Message, idKind byte, hasParams, hasResult, hasError bool) error {
	switch {
	case hasParams:
		return fmt.Errorf("%w: params without a method", ErrInvalidRequest)
	case hasResult && hasError:
		return fmt.Errorf("%w: both result and error", ErrInvalidRequest)
	case !hasResult && !hasError:
		return fmt.Errorf("%w: no method", ErrInvalidRequest)
	case idKind == 0:
		return fmt.Errorf("%w: response without an id", ErrInvalidRequest)
	case hasResult && idKind == 'n':
		return fmt.Errorf("%w: null id", ErrInvalidRequest)
	case hasResult:
		m.Kind = KindResponse
	default:
		m.Kind = KindError
	}
	return nil
}

// target checks the params of the methods that name a tool, a prompt or a
// resource, and sets the message's Name, URI and Arguments.
func target(m *Message, hasParams bool, pr *params) error {
	var named bool
	if TaskMethod(m.Method) {
		return taskTarget(m, hasParams, pr)
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		named = true
	case "resources/read", "resources/subscribe", "resources/unsubscribe", "completion/complete":
	default:
		return nil
	}
	if m.Kind != KindRequest {
		return fmt.Errorf("%w: %s without an id", ErrInvalidRequest, m.Method)
	}
	if !hasParams {
		return fmt.Errorf("%w: %s without params", ErrInvalidParams, m.Method)
	}
	if m.Method == "completion/complete" {
		return completionTarget(m, pr)
	}
	if !named {
		if pr.uriKind != '"' {
			return fmt.Errorf("%w: %s without a string params.uri", ErrInvalidParams, m.Method)
		}
		if !validURI(pr.uri) {
			return fmt.Errorf("%w: params.uri empty or with a control character", ErrInvalidParams)
		}
		m.URI = string(pr.uri)
		return nil
	}
	if pr.nameKind != '"' {
		return fmt.Errorf("%w: %s without a string params.name", ErrInvalidParams, m.Method)
	}
	if !validName(pr.name) {
		return fmt.Errorf("%w: params.name is not 1 to 128 characters of [A-Za-z0-9_.-]", ErrInvalidParams)
	}
	switch pr.argsKind {
	case 0, 'n':
	case '{':
		m.Arguments = pr.args
	default:
		return fmt.Errorf("%w: params.arguments is not an object", ErrInvalidParams)
	}
	m.Name = string(pr.name)
	m.NameSpan = pr.nameSpan
	return nil
}

// TaskMethod reports whether method is a request about one task, named by
// params.taskId: tasks/get, tasks/update and tasks/cancel of the tasks
// extension (SEP-2663), and tasks/result of 2025-11-25.
func TaskMethod(method string) bool {
	switch method {
	case "tasks/get", "tasks/update", "tasks/cancel", "tasks/result":
		return true
	}
	return false
}

// maxTaskID bounds params.taskId, in bytes: it travels in the Mcp-Name
// header too.
const maxTaskID = 4 << 10

// taskTarget checks the params of a TaskMethod request: a non-empty string
// params.taskId of at most maxTaskID bytes without control characters,
// which sets TaskID and TaskIDSpan.
func taskTarget(m *Message, hasParams bool, pr *params) error {
	if m.Kind != KindRequest {
		return fmt.Errorf("%w: %s without an id", ErrInvalidRequest, m.Method)
	}
	if !hasParams || pr.taskIDKind != '"' {
		return fmt.Errorf("%w: %s without a string params.taskId", ErrInvalidParams, m.Method)
	}
	if len(pr.taskID) > maxTaskID || !validURI(pr.taskID) {
		return fmt.Errorf("%w: params.taskId empty, longer than %d bytes or with a control character", ErrInvalidParams, maxTaskID)
	}
	m.TaskID, m.TaskIDSpan = string(pr.taskID), pr.taskIDSpan
	return nil
}

// completionTarget checks params.ref of completion/complete: a ref/prompt
// with a valid name, which sets Name and NameSpan, or a ref/resource with a
// URI (template), which sets URI. Arguments stays nil: params.argument is
// the value being completed, not a call's arguments.
func completionTarget(m *Message, pr *params) error {
	r := &pr.ref
	switch {
	case !pr.hasRef:
		return fmt.Errorf("%w: completion/complete without params.ref", ErrInvalidParams)
	case r.typKind != '"':
		return fmt.Errorf("%w: params.ref without a string type", ErrInvalidParams)
	}
	switch string(r.typ) {
	case "ref/prompt":
		if r.uriKind != 0 {
			return fmt.Errorf("%w: ref/prompt with a uri", ErrInvalidParams)
		}
		if r.nameKind != '"' || !validName(r.name) {
			return fmt.Errorf("%w: ref/prompt without a name of 1 to 128 characters of [A-Za-z0-9_.-]", ErrInvalidParams)
		}
		m.Name, m.NameSpan = string(r.name), r.nameSpan
	case "ref/resource":
		if r.nameKind != 0 {
			return fmt.Errorf("%w: ref/resource with a name", ErrInvalidParams)
		}
		if r.uriKind != '"' || !validURI(r.uri) {
			return fmt.Errorf("%w: ref/resource without a non-empty uri free of control characters", ErrInvalidParams)
		}
		m.URI = string(r.uri)
	default:
		return fmt.Errorf("%w: params.ref type %.40q is neither ref/prompt nor ref/resource", ErrInvalidParams, r.typ)
	}
	m.Ref = string(r.typ)
	return nil
}

// ref reads params.ref at depth: type, name and uri; title and other
// members are read and left.
func (p *scanner) ref(depth int, r *ref) error {
	return p.Members(depth, func(k []byte) (err error) {
		switch string(k) {
		case "type":
			r.typ, r.typKind, err = p.member(depth)
		case "name":
			start := p.Pos
			r.name, r.nameKind, err = p.member(depth)
			r.nameSpan = Span{start, p.Pos}
		case "uri":
			r.uri, r.uriKind, err = p.member(depth)
		default:
			if m, ok := refMembers[string(jsonscan.Fold(k))]; ok && m != string(k) && !p.Exact {
				return fmt.Errorf("%w: params.ref member %.40q is %q in another case", ErrInvalidParams, k, m)
			}
			_, err = p.Value(depth)
		}
		return err
	})
}

// refMembers maps the folded form of the members of params.ref to their
// one spelling, as paramMembers does for params.
var refMembers = map[string]string{"type": "type", "name": "name", "uri": "uri"}

// params reads a params object at depth, noting name, uri and arguments.
func (p *scanner) params(depth int, pr *params) error {
	return p.Members(depth, func(k []byte) (err error) {
		switch string(k) {
		case "name":
			start := p.Pos
			pr.name, pr.nameKind, err = p.member(depth)
			pr.nameSpan = Span{start, p.Pos}
		case "uri":
			pr.uri, pr.uriKind, err = p.member(depth)
		case "taskId":
			start := p.Pos
			pr.taskID, pr.taskIDKind, err = p.member(depth)
			pr.taskIDSpan = Span{start, p.Pos}
		case "ref":
			if p.Peek() != '{' {
				return fmt.Errorf("%w: params.ref is not an object", ErrInvalidParams)
			}
			pr.hasRef = true
			err = p.ref(depth+1, &pr.ref)
		case "arguments":
			start := p.Pos
			pr.argsKind, err = p.Value(depth)
			pr.args = p.Buf[start:p.Pos]
		case "cursor", "requestId", "_meta":
			start := p.Pos
			_, err = p.Value(depth)
			v := p.Buf[start:p.Pos]
			switch string(k) {
			case "cursor":
				pr.cursor = v
			case "requestId":
				pr.requestID = v
			default:
				pr.meta = v
			}
		default:
			if m, ok := misspelledParam(k); ok && !p.Exact {
				return fmt.Errorf("%w: params member %.40q is %q in another case", ErrInvalidParams, k, m)
			}
			_, err = p.Value(depth)
		}
		return err
	})
}

// paramMembers maps the folded form (FoldKey) of every member the MCP schema
// defines for the params of a request or notification (revisions 2025-06-18
// to 2026-07-28, the tasks extension included) to its one spelling.
var paramMembers = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		"_meta", "argument", "arguments", "capabilities", "clientInfo", "context",
		"createdAt", "cursor", "data", "elicitationId", "includeContext",
		"inputResponses", "lastUpdatedAt", "level", "logger", "maxTokens", "message",
		"messages", "metadata", "mode", "modelPreferences", "name", "notifications",
		"pollInterval", "progress", "progressToken", "protocolVersion", "reason", "ref",
		"requestId", "requestState", "requestedSchema", "status", "statusMessage",
		"stopSequences", "systemPrompt", "task", "taskId", "temperature", "toolChoice",
		"tools", "total", "ttl", "uri", "url",
	} {
		m[string(jsonscan.Fold([]byte(s)))] = s
	}
	return m
}()

// maxParamMember bounds the bytes of a key that can jsonscan.Fold to a member of
// paramMembers: 16 runes of at most 3 bytes (U+212A KELVIN SIGN is 3).
const maxParamMember = 16 * 3

// misspelledParam reports whether params key k differs from a member MCP
// defines for params, returned, only by case: a lenient decoder (Go's
// encoding/json) would read k as that member, and this package would not.
func misspelledParam(k []byte) (string, bool) {
	if len(k) > maxParamMember {
		return "", false
	}
	var tmp [maxParamMember]byte
	m, ok := paramMembers[string(jsonscan.AppendFold(tmp[:0], k))]
	return m, ok && m != string(k)
}

// member reads a value and returns it decoded if it is a string.
func (p *scanner) member(depth int) ([]byte, byte, error) {
	if p.Peek() == '"' {
		s, err := p.Text()
		return s, '"', err
	}
	kind, err := p.Value(depth)
	return nil, kind, err
}

// errorObject reads a JSON-RPC error object at depth: an integer code, a
// string message and optional data, nothing else.
func (p *scanner) errorObject(depth int) error {
	if p.Peek() != '{' {
		return fmt.Errorf("%w: error is not an object", ErrInvalidRequest)
	}
	empty, err := p.Open(depth, '}')
	if err != nil {
		return err
	}
	ks := p.BeginObject()
	var code, msg byte
	for more := !empty; more; {
		k, err := p.Key(&ks)
		if err != nil {
			return err
		}
		var kind byte
		if kind, err = p.Value(depth); err != nil {
			return err
		}
		switch string(k) {
		case "code":
			code = kind
		case "message":
			msg = kind
		case "data":
		default:
			return fmt.Errorf("%w: unknown member %.40q in error", ErrInvalidRequest, k)
		}
		if more, err = p.Next('}'); err != nil {
			return err
		}
	}
	p.EndObject(ks)
	if code != jsonscan.KindInt || msg != '"' {
		return fmt.Errorf("%w: error without an integer code and a string message", ErrInvalidRequest)
	}
	return nil
}

func validName(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
		return false
	}
	for _, c := range b {
		if !nameChar[c] {
			return false
		}
	}
	return true
}

func validURI(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// methods are the MCP methods, returned without allocating: those of
// revisions 2025-11-25 and 2026-07-28 with the tasks extension
// (testdata/methods.txt, TestMethodsOfTheSpec).
var methods = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		"initialize", "ping", "server/discover", "subscriptions/listen",
		"tools/list", "tools/call",
		"prompts/list", "prompts/get",
		"resources/list", "resources/templates/list", "resources/read",
		"resources/subscribe", "resources/unsubscribe",
		"completion/complete", "logging/setLevel",
		"sampling/createMessage", "elicitation/create", "roots/list",
		"tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "tasks/update",
		"notifications/initialized", "notifications/cancelled", "notifications/progress",
		"notifications/message", "notifications/roots/list_changed",
		"notifications/tools/list_changed", "notifications/prompts/list_changed",
		"notifications/resources/list_changed", "notifications/resources/updated",
		"notifications/elicitation/complete", "notifications/tasks/status",
		"notifications/tasks", "notifications/subscriptions/acknowledged",
	} {
		m[s] = s
	}
	return m
}()

// methodName checks a decoded method, 1 to 256 bytes of visible ASCII (it
// travels in a header), and returns it as a string.
func methodName(b []byte) (string, error) {
	if s, ok := methods[string(b)]; ok {
		return s, nil
	}
	if len(b) == 0 || len(b) > maxMethod {
		return "", fmt.Errorf("%w: method empty or longer than %d bytes", ErrInvalidRequest, maxMethod)
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("%w: method with a character outside visible ASCII", ErrInvalidRequest)
		}
	}
	return string(b), nil
}
