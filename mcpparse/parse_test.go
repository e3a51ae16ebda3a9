package mcpparse

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// goodCases are valid messages and what Parse must make of them.
var goodCases = []struct {
	name string
	body string
	want Message
}{
	{
		name: "tools/call with arguments",
		body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"namespace":"default"}}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "kube_pods_list", Arguments: raw(`{"namespace":"default"}`)},
	},
	{
		name: "string id kept with its quotes and escapes",
		body: `{"jsonrpc":"2.0","id":"a\u0062c","method":"tools/call","params":{"name":"echo"}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`"a\u0062c"`), Name: "echo"},
	},
	{
		name: "escaped name and method are decoded",
		body: `{"jsonrpc":"2\u002e0","id":7,"method":"tools\/call","params":{"name":"\u006bube_pods","arguments":{}}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`7`), Name: "kube_pods", Arguments: raw(`{}`)},
	},
	{
		name: "params before method",
		body: `{"params":{"arguments":{"a":[1,2,{"b":null}]},"name":"x.y-z"},"method":"tools/call","id":-3,"jsonrpc":"2.0"}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`-3`), Name: "x.y-z", Arguments: raw(`{"a":[1,2,{"b":null}]}`)},
	},
	{
		name: "white space everywhere",
		body: " \r\n\t{ \"jsonrpc\" : \"2.0\" ,\n \"id\" : 0 , \"method\" : \"tools/call\" , \"params\" : { \"name\" : \"t\" , \"arguments\" : { \"k\" : [ ] } } } \n",
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`0`), Name: "t", Arguments: raw(`{ "k" : [ ] }`)},
	},
	{
		name: "null arguments are absent",
		body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":null}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "t"},
	},
	{
		name: "tools/call with _meta and a 128-character name",
		body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"p"},"name":"` + strings.Repeat("a", 128) + `"}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: strings.Repeat("a", 128)},
	},
	{
		name: "arguments with unicode",
		body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"s":"é😀\ud83d\ude00\n"}}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "t", Arguments: raw(`{"s":"é😀\ud83d\ude00\n"}`)},
	},
	{
		name: "prompts/get",
		body: `{"jsonrpc":"2.0","id":"p1","method":"prompts/get","params":{"name":"code_review","arguments":{"code":"x"}}}`,
		want: Message{Kind: KindRequest, Method: "prompts/get", ID: raw(`"p1"`), Name: "code_review", Arguments: raw(`{"code":"x"}`)},
	},
	{
		name: "resources/read",
		body: `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///tmp/a%20b.txt"}}`,
		want: Message{Kind: KindRequest, Method: "resources/read", ID: raw(`2`), URI: "file:///tmp/a%20b.txt"},
	},
	{
		name: "resources/subscribe",
		body: `{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"test://static/resource/1"}}`,
		want: Message{Kind: KindRequest, Method: "resources/subscribe", ID: raw(`3`), URI: "test://static/resource/1"},
	},
	{
		name: "resources/unsubscribe",
		body: `{"jsonrpc":"2.0","id":4,"method":"resources/unsubscribe","params":{"uri":"test://x"}}`,
		want: Message{Kind: KindRequest, Method: "resources/unsubscribe", ID: raw(`4`), URI: "test://x"},
	},
	{
		name: "initialize",
		body: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
		want: Message{Kind: KindRequest, Method: "initialize", ID: raw(`0`)},
	},
	{
		name: "tools/list without params",
		body: `{"jsonrpc":"2.0","id":"x","method":"tools/list"}`,
		want: Message{Kind: KindRequest, Method: "tools/list", ID: raw(`"x"`)},
	},
	{
		name: "unknown method",
		body: `{"jsonrpc":"2.0","id":9,"method":"vendor/thing","params":{"name":"not a tool name"}}`,
		want: Message{Kind: KindRequest, Method: "vendor/thing", ID: raw(`9`)},
	},
	{
		name: "notification",
		body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		want: Message{Kind: KindNotification, Method: "notifications/initialized"},
	},
	{
		name: "notification with params",
		body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"r"}}`,
		want: Message{Kind: KindNotification, Method: "notifications/cancelled"},
	},
	{
		name: "response to an elicitation",
		body: `{"jsonrpc":"2.0","id":5,"result":{"action":"accept","content":{"a":1}}}`,
		want: Message{Kind: KindResponse, ID: raw(`5`)},
	},
	{
		name: "error",
		body: `{"jsonrpc":"2.0","id":"s","error":{"code":-32042,"message":"url required","data":{"u":1}}}`,
		want: Message{Kind: KindError, ID: raw(`"s"`)},
	},
	{
		name: "error with null id",
		body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
		want: Message{Kind: KindError, ID: raw(`null`)},
	},
	{
		name: "large integer id",
		body: `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}`,
		want: Message{Kind: KindRequest, Method: "ping", ID: raw(`123456789012345678901234567890`)},
	},
	{
		name: "keys differing by more than case",
		body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1,"ab":2,"Ab_":3,"\u00e9":4,"e":5}}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "t", Arguments: raw(`{"a":1,"ab":2,"Ab_":3,"\u00e9":4,"e":5}`)},
	},
	{
		name: "escapes of every kind decoded in a uri",
		body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:\/\/\/caf\u00E9\u00e9 \ud83D\uDE00\"\\"}}`,
		want: Message{Kind: KindRequest, Method: "resources/read", ID: raw(`1`), URI: "file:///caféé 😀\"\\"},
	},
	{
		name: "nested objects with many keys each",
		body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{` + manyKeys(15, false) + `,"x":{` + manyKeys(15, false) + `,"y":{` + manyKeys(15, false) + `}},"z":{` + manyKeys(15, false) + `}}}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "t", Arguments: raw(`{` + manyKeys(15, false) + `,"x":{` + manyKeys(15, false) + `,"y":{` + manyKeys(15, false) + `}},"z":{` + manyKeys(15, false) + `}}`)},
	},
	{
		name: "many distinct keys",
		body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{` + manyKeys(40, false) + `}}}`,
		want: Message{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "t", Arguments: raw(`{` + manyKeys(40, false) + `}`)},
	},
}

// badCases are invalid bodies and the error Parse must wrap.
var badCases = []struct {
	name string
	body string
	opts Options
	want *Error
}{
	{name: "empty body", body: ``, want: ErrParse},
	{name: "white space only", body: " \n\t", want: ErrParse},
	{name: "not JSON", body: `hello`, want: ErrParse},
	{name: "single quotes", body: `{'jsonrpc':'2.0'}`, want: ErrParse},
	{name: "batch", body: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, want: ErrBatch},
	{name: "broken batch", body: ` [`, want: ErrBatch},
	{name: "jsonrpc 1.0", body: `{"jsonrpc":"1.0","id":1,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "jsonrpc number", body: `{"jsonrpc":2.0,"id":1,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "no jsonrpc", body: `{"id":1,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "id object", body: `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, want: ErrInvalidRequest},
	{name: "id array", body: `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, want: ErrInvalidRequest},
	{name: "id bool", body: `{"jsonrpc":"2.0","id":true,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "id null on a request", body: `{"jsonrpc":"2.0","id":null,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "id fraction", body: `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "id exponent", body: `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "no method", body: `{"jsonrpc":"2.0","id":1}`, want: ErrInvalidRequest},
	{name: "method number", body: `{"jsonrpc":"2.0","id":1,"method":7}`, want: ErrInvalidRequest},
	{name: "method empty", body: `{"jsonrpc":"2.0","id":1,"method":""}`, want: ErrInvalidRequest},
	{name: "method with a newline", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call\n"}`, want: ErrInvalidRequest},
	{name: "method too long", body: `{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat("m", 257) + `"}`, want: ErrInvalidRequest},
	{name: "Method instead of method", body: `{"jsonrpc":"2.0","id":1,"Method":"ping"}`, want: ErrInvalidRequest},
	{name: "unknown member", body: `{"jsonrpc":"2.0","id":1,"method":"ping","foo":1}`, want: ErrInvalidRequest},
	{name: "tools/call without params", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, want: ErrInvalidParams},
	{name: "tools/call without params.name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}`, want: ErrInvalidParams},
	{name: "Name instead of name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"t"}}`, want: ErrInvalidParams},
	{name: "name not a string", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["t"]}}`, want: ErrInvalidParams},
	{name: "name empty", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}`, want: ErrInvalidParams},
	{name: "name with a space", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube pods"}}`, want: ErrInvalidParams},
	{name: "name with a slash", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube/pods"}}`, want: ErrInvalidParams},
	{name: "name not ASCII", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kübe"}}`, want: ErrInvalidParams},
	{name: "name with an escaped newline", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\nb"}}`, want: ErrInvalidParams},
	{name: "name of 129 characters", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + strings.Repeat("a", 129) + `"}}`, want: ErrInvalidParams},
	{name: "prompt name with bad characters", body: `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"a:b"}}`, want: ErrInvalidParams},
	{name: "duplicate name keys", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`, want: ErrInvalidRequest},
	{name: "duplicate name keys, one escaped", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","n\u0061me":"b"}}`, want: ErrInvalidRequest},
	{name: "duplicate method", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"a"}}`, want: ErrInvalidRequest},
	{name: "duplicate id", body: `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, want: ErrInvalidRequest},
	{name: "duplicate key in arguments", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":{"y":1,"y":2}}}}`, want: ErrInvalidRequest},
	{name: "duplicate key in a large object", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{` + manyKeys(40, true) + `}}}`, want: ErrInvalidRequest},
	{name: "duplicate key in an array element", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"l":[{},{"a":1,"a":1}]}}`, want: ErrInvalidRequest},
	{name: "duplicate key in result", body: `{"jsonrpc":"2.0","id":1,"result":{"a":1,"a":1}}`, want: ErrInvalidRequest},
	{name: "name keys differing in case", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","NAME":"delete"}}`, want: ErrInvalidRequest},
	{name: "arguments keys differing in case", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"path":"/tmp","Path":"/etc"}}}`, want: ErrInvalidRequest},
	{name: "keys equal under Unicode folding", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{},"argument\u017f":{"x":1}}}`, want: ErrInvalidRequest},
	{name: "Kelvin sign", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"k":1,"\u212a":2}}`, want: ErrInvalidRequest},
	{name: "keys differing in case in a large object", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{` + manyKeys(40, false) + `,"K39":1}}}`, want: ErrInvalidRequest},
	{name: "escaped key differing in case in a large object", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"\u004b0":1,` + manyKeys(40, false) + `}}}`, want: ErrInvalidRequest},
	{name: "duplicate escaped keys", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"\b\f\n\r\t\"\\\/\u00e9":1,"\b\f\n\r\t\"\\/\u00C9":2}}`, want: ErrInvalidRequest},
	{name: "duplicate key once the key stack outgrew its array", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{` + manyKeys(15, false) + `,"x":{` + manyKeys(15, false) + `,"y":{` + manyKeys(15, false) + `,"k3":0}}}}`, want: ErrInvalidRequest},
	{name: "duplicate key after the key stack outgrew its array", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{` + manyKeys(15, false) + `,"x":{` + manyKeys(15, false) + `,"y":{` + manyKeys(15, false) + `}},"k3":0}}`, want: ErrInvalidRequest},
	{name: "params array", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["t"]}`, want: ErrInvalidParams},
	{name: "params string", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}`, want: ErrInvalidParams},
	{name: "arguments array", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}`, want: ErrInvalidParams},
	{name: "tools/call without an id", body: `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t"}}`, want: ErrInvalidRequest},
	{name: "resources/read without uri", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}`, want: ErrInvalidParams},
	{name: "resources/read with an empty uri", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":""}}`, want: ErrInvalidParams},
	{name: "resources/read uri with a newline", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a\r\nx-mcp-toolname: t"}}`, want: ErrInvalidParams},
	{name: "result and error", body: `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`, want: ErrInvalidRequest},
	{name: "method and result", body: `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, want: ErrInvalidRequest},
	{name: "response without id", body: `{"jsonrpc":"2.0","result":{}}`, want: ErrInvalidRequest},
	{name: "response with null id", body: `{"jsonrpc":"2.0","id":null,"result":{}}`, want: ErrInvalidRequest},
	{name: "result not an object", body: `{"jsonrpc":"2.0","id":1,"result":"ok"}`, want: ErrInvalidRequest},
	{name: "params without method", body: `{"jsonrpc":"2.0","id":1,"params":{},"result":{}}`, want: ErrInvalidRequest},
	{name: "error without code", body: `{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}`, want: ErrInvalidRequest},
	{name: "error with a fractional code", body: `{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"m"}}`, want: ErrInvalidRequest},
	{name: "error with an unknown member", body: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","x":1}}`, want: ErrInvalidRequest},
	{name: "error empty", body: `{"jsonrpc":"2.0","id":1,"error":{}}`, want: ErrInvalidRequest},
	{name: "error with a duplicate code", body: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","Code":2}}`, want: ErrInvalidRequest},
	{name: "error with a message not a string", body: `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":1}}`, want: ErrInvalidRequest},
	{name: "error truncated", body: `{"jsonrpc":"2.0","id":1,"error":{"code":1,`, want: ErrParse},
	{name: "error without a colon", body: `{"jsonrpc":"2.0","id":1,"error":{"code" 1}}`, want: ErrParse},
	{name: "result truncated", body: `{"jsonrpc":"2.0","id":1,"result":{"a":[1,2`, want: ErrParse},
	{name: "bad hex in an escape", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\u00g0"}}`, want: ErrParse},
	{name: "high surrogate then a non-surrogate", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\ud800\u0041"}}`, want: ErrParse},
	{name: "high surrogate then another escape", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\ud800\n"}}`, want: ErrParse},
	{name: "backslash at the end", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\`, want: ErrParse},
	{name: "error not an object", body: `{"jsonrpc":"2.0","id":1,"error":"m"}`, want: ErrInvalidRequest},
	{name: "string, not an object", body: `"tools/call"`, want: ErrInvalidRequest},
	{name: "number, not an object", body: `1`, want: ErrInvalidRequest},
	{name: "null, not an object", body: `null`, want: ErrInvalidRequest},
	{name: "body over the limit", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, opts: Options{MaxBytes: 20}, want: ErrTooLarge},
	{name: "body over the default limit", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"` + strings.Repeat("a", 1<<20) + `"}}`, want: ErrTooLarge},
	{name: "truncated", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"`, want: ErrParse},
	{name: "truncated in a string", body: `{"jsonrpc":"2.0","id":1,"method":"tools/ca`, want: ErrParse},
	{name: "truncated after a bad version", body: `{"jsonrpc":"1.0","id":1,`, want: ErrParse},
	{name: "syntax error after a duplicate", body: `{"jsonrpc":"2.0","jsonrpc":"2.0",}`, want: ErrParse},
	{name: "deep nesting", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}}`, want: ErrInvalidRequest},
	{name: "nesting over a small limit", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":{}}}}`, opts: Options{MaxDepth: 3}, want: ErrInvalidRequest},
	{name: "deep and broken", body: `{"a":` + strings.Repeat("[", 100000), want: ErrParse},
	{name: "invalid UTF-8 in a string", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"arguments\":{\"a\":\"\xff\"}}}", want: ErrParse},
	{name: "invalid UTF-8 in a key", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"\xc3\x28\":1}}", want: ErrParse},
	{name: "UTF-8 encoded surrogate", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"a\":\"\xed\xa0\x80\"}}", want: ErrParse},
	{name: "overlong UTF-8", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"a\":\"\xc0\xaf\"}}", want: ErrParse},
	{name: "lone surrogate escape", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\ud800"}}`, want: ErrParse},
	{name: "reversed surrogate pair", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\udc00\ud800"}}`, want: ErrParse},
	{name: "bad escape", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\x41"}}`, want: ErrParse},
	{name: "short unicode escape", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\u41"}}`, want: ErrParse},
	{name: "control character in a string", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"a\":\"\t\"}}", want: ErrParse},
	{name: "byte order mark", body: "\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", want: ErrParse},
	{name: "trailing data", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}x`, want: ErrParse},
	{name: "two messages", body: `{"jsonrpc":"2.0","id":1,"method":"ping"} {"jsonrpc":"2.0","id":2,"method":"ping"}`, want: ErrParse},
	{name: "trailing comma", body: `{"jsonrpc":"2.0","id":1,"method":"ping",}`, want: ErrParse},
	{name: "trailing comma in an array", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":[1,]}}`, want: ErrParse},
	{name: "missing colon", body: `{"jsonrpc" "2.0"}`, want: ErrParse},
	{name: "leading zero", body: `{"jsonrpc":"2.0","id":01,"method":"ping"}`, want: ErrParse},
	{name: "bare minus", body: `{"jsonrpc":"2.0","id":-,"method":"ping"}`, want: ErrParse},
	{name: "no fraction digits", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1.}}`, want: ErrParse},
	{name: "no exponent digits", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1e+}}`, want: ErrParse},
	{name: "bad literal", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":tru}}`, want: ErrParse},
	{name: "NaN", body: `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":NaN}}`, want: ErrParse},
	{name: "comment", body: `{"jsonrpc":"2.0","id":1,"method":"ping"} // hi`, want: ErrParse},
	{name: "non-string key", body: `{"jsonrpc":"2.0",1:2}`, want: ErrParse},
	{name: "NUL after the value", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\x00", want: ErrParse},
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// manyKeys returns n members "k0":0,... and, if dup, a repeat of the first.
func manyKeys(n int, dup bool) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	if dup {
		b.WriteString(`,"k0":0`)
	}
	return b.String()
}

func TestParse(t *testing.T) {
	for _, tc := range goodCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.body), Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, located); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			checkSpans(t, []byte(tc.body), got)
		})
	}
}

// located leaves out of a comparison what Parse locates in the body rather
// than decodes: TestParse checks it with checkSpans, TestParseLocates with
// its own table.
var located = cmpopts.IgnoreFields(Message{}, "IDSpan", "NameSpan", "Params", "Cursor", "RequestID", "Meta", "Result", "Error")

// checkSpans checks that the spans of m point at its id and name in body.
func checkSpans(t *testing.T, body []byte, m Message) {
	t.Helper()
	if got := body[m.IDSpan.Start:m.IDSpan.End]; string(got) != string(m.ID) {
		t.Errorf("IDSpan %v holds %q, want the id %q", m.IDSpan, got, m.ID)
	}
	if m.Name == "" {
		if m.NameSpan != (Span{}) {
			t.Errorf("NameSpan %v without a name", m.NameSpan)
		}
		return
	}
	if got, err := String(body[m.NameSpan.Start:m.NameSpan.End]); err != nil || got != m.Name {
		t.Errorf("NameSpan %v holds %q (%v), want the name %q", m.NameSpan, body[m.NameSpan.Start:m.NameSpan.End], err, m.Name)
	}
}

// TestParseLocates: the raw parts Parse hands on as sent, for a router that
// must not decode the body again.
func TestParseLocates(t *testing.T) {
	tests := []struct {
		name, body string
		want       Message
	}{
		{
			name: "list with a cursor and _meta",
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"b1","_meta":{"k":1}}}`,
			want: Message{Params: raw(`{"cursor":"b1","_meta":{"k":1}}`), Cursor: raw(`"b1"`), Meta: raw(`{"k":1}`)},
		},
		{
			name: "a cursor of another type is the method's affair",
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":7}}`,
			want: Message{Params: raw(`{"cursor":7}`), Cursor: raw(`7`)},
		},
		{
			name: "cancelled names its request",
			body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a\u0062","reason":"x"}}`,
			want: Message{Params: raw(`{"requestId":"a\u0062","reason":"x"}`), RequestID: raw(`"a\u0062"`)},
		},
		{
			name: "initialize params as sent",
			body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}`,
			want: Message{Params: raw(`{"protocolVersion":"2025-06-18","capabilities":{}}`)},
		},
		{
			name: "response",
			body: `{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`,
			want: Message{Result: raw(`{"tools":[]}`)},
		},
		{
			name: "error",
			body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no"}}`,
			want: Message{Error: raw(`{"code":-32600,"message":"no"}`)},
		},
		{
			name: "escaped name located as sent",
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\u005fb"}}`,
			want: Message{Params: raw(`{"name":"a\u005fb"}`)},
		},
	}
	only := cmpopts.IgnoreFields(Message{}, "Kind", "Method", "ID", "Name", "URI", "Arguments", "IDSpan", "NameSpan")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, only); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			checkSpans(t, []byte(tt.body), got)
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.body), tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse error = %v, want %v", err, tc.want)
			}
			if c := Code(err); c != tc.want.Code {
				t.Errorf("Code = %d, want %d", c, tc.want.Code)
			}
			if diff := cmp.Diff(Message{}, got); diff != "" {
				t.Errorf("Parse returned a message with its error (-want +got):\n%s", diff)
			}
		})
	}
}

const (
	batchCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}`
	batchNote = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
)

// batchCases are bodies for ParseBatch and what it must make of them.
var batchCases = []struct {
	name string
	body string
	opts Options
	want []Message
	err  *Error
}{
	{
		name: "two messages",
		body: " [" + batchCall + " , " + batchNote + "] ",
		want: []Message{
			{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "t", Arguments: raw(`{"a":1}`)},
			{Kind: KindNotification, Method: "notifications/initialized"},
		},
	},
	{
		name: "single object",
		body: batchCall,
		want: []Message{{Kind: KindRequest, Method: "tools/call", ID: raw(`1`), Name: "t", Arguments: raw(`{"a":1}`)}},
	},
	{name: "empty array", body: `[ ]`, err: ErrInvalidRequest},
	{name: "element not an object", body: `[` + batchCall + `,1]`, err: ErrInvalidRequest},
	{name: "bad element", body: `[` + batchNote + `,{"jsonrpc":"2.0","id":{},"method":"ping"}]`, err: ErrInvalidRequest},
	{name: "bad params in an element", body: `[` + batchNote + `,{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a b"}}]`, err: ErrInvalidParams},
	{name: "nested batch", body: `[[` + batchNote + `]]`, err: ErrInvalidRequest},
	{name: "bad single object", body: `{"jsonrpc":"1.0"}`, err: ErrInvalidRequest},
	{name: "empty body", body: ``, err: ErrParse},
	{name: "truncated", body: `[` + batchNote + `,`, err: ErrParse},
	{name: "truncated after a bad element", body: `[1,`, err: ErrParse},
	{name: "trailing data", body: `[` + batchNote + `]]`, err: ErrParse},
	{name: "over the limit", body: `[` + batchNote + `,` + batchNote + `]`, opts: Options{MaxBytes: 100}, err: ErrTooLarge},
	{name: "the array counts as a level", body: `[` + batchCall + `]`, opts: Options{MaxDepth: 3}, err: ErrInvalidRequest},
}

func TestParseBatch(t *testing.T) {
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBatch([]byte(tc.body), tc.opts)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || Code(err) != tc.err.Code {
					t.Fatalf("ParseBatch error = %v (code %d), want %v", err, Code(err), tc.err)
				}
				if got != nil {
					t.Errorf("ParseBatch returned %v with its error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBatch: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, located); diff != "" {
				t.Errorf("ParseBatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "nil", err: nil, want: 0},
		{name: "other error", err: errors.New("boom"), want: CodeInternalError},
		{name: "sentinel", err: ErrParse, want: CodeParseError},
		{name: "wrapped twice", err: fmt.Errorf("authz: %w", fmt.Errorf("%w: detail", ErrInvalidParams)), want: CodeInvalidParams},
		{name: "batch", err: ErrBatch, want: CodeInvalidRequest},
		{name: "too large", err: ErrTooLarge, want: CodeInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Code(tc.err); got != tc.want {
				t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	_, err := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`), Options{})
	if got, want := err.Error(), `mcpparse: invalid request: duplicate key "name"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// A key long enough to carry a secret is cut short in the error text.
	long := strings.Repeat("s", 200)
	_, err = Parse([]byte(`{"jsonrpc":"2.0","`+long+`":1}`), Options{})
	if strings.Contains(err.Error(), long[:41]) {
		t.Errorf("Error() = %q holds more than 40 bytes of the key", err)
	}
}

func TestIsBatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{name: "array", body: `[]`, want: true},
		{name: "array after white space", body: " \r\n\t[", want: true},
		{name: "object", body: `{}`, want: false},
		{name: "empty", body: ``, want: false},
		{name: "other space before", body: "\v[", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsBatch([]byte(tc.body)); got != tc.want {
				t.Errorf("IsBatch(%q) = %v, want %v", tc.body, got, tc.want)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "letters digits and separators", in: "Kube_pods.list-2", want: true},
		{name: "one character", in: "a", want: true},
		{name: "128 characters", in: strings.Repeat("x", 128), want: true},
		{name: "empty", in: "", want: false},
		{name: "129 characters", in: strings.Repeat("x", 129), want: false},
		{name: "space", in: "a b", want: false},
		{name: "slash", in: "a/b", want: false},
		{name: "colon", in: "a:b", want: false},
		{name: "non-ASCII", in: "é", want: false},
		{name: "NUL", in: "a\x00", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidName(tc.in); got != tc.want {
				t.Errorf("ValidName(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindRequest: "request", KindNotification: "notification", KindResponse: "response", KindError: "error", 0: "Kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}
