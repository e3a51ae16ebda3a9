package mcpparse

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestParseTask(t *testing.T) {
	tests := []struct {
		name, body string
		taskID     string
		err        error
	}{
		{name: "get", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1"}}`, taskID: "t-1"},
		{name: "update", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/update","params":{"inputResponses":{},"taskId":"t\u002d2"}}`, taskID: "t-2"},
		{name: "cancel", body: `{"jsonrpc":"2.0","id":"a","method":"tasks/cancel","params":{"taskId":"x"}}`, taskID: "x"},
		{name: "result", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/result","params":{"taskId":"x"}}`, taskID: "x"},
		{name: "list names none", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/list","params":{}}`},
		{name: "no params", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get"}`, err: ErrInvalidParams},
		{name: "no taskId", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{}}`, err: ErrInvalidParams},
		{name: "taskId not string", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/cancel","params":{"taskId":7}}`, err: ErrInvalidParams},
		{name: "empty taskId", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":""}}`, err: ErrInvalidParams},
		{name: "control character", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"a\nb"}}`, err: ErrInvalidParams},
		{name: "too long", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"` + strings.Repeat("a", maxTaskID+1) + `"}}`, err: ErrInvalidParams},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"tasks/get","params":{"taskId":"x"}}`, err: ErrInvalidRequest},
		{name: "taskId in another case", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"x","TaskID":"y"}}`, err: ErrInvalidRequest},
		{name: "duplicate taskId", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"x","taskId":"y"}}`, err: ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.body), Options{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse: %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.TaskID != tt.taskID {
				t.Fatalf("TaskID %q, want %q", m.TaskID, tt.taskID)
			}
			if m.TaskID == "" {
				return
			}
			spliced := Splice([]byte(tt.body), m.TaskIDSpan, AppendString(nil, "other"))
			m2, err := Parse(spliced, Options{})
			if err != nil || m2.TaskID != "other" {
				t.Fatalf("spliced %s: %v %q", spliced, err, m2.TaskID)
			}
		})
	}
}

func TestCheckMirrorTask(t *testing.T) {
	const v = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`
	b64 := "=?base64?" + base64.StdEncoding.EncodeToString([]byte("t-1")) + "?="
	tests := []struct {
		name, body string
		h          Mirror
		ok         bool
	}{
		{name: "get matches", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1",` + v + `}}`, h: Mirror{Method: "tasks/get", HasMethod: true, Name: "t-1", HasName: true}, ok: true},
		{name: "base64 form", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/cancel","params":{"taskId":"t-1",` + v + `}}`, h: Mirror{Method: "tasks/cancel", HasMethod: true, Name: b64, HasName: true}, ok: true},
		{name: "other task", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1",` + v + `}}`, h: Mirror{Method: "tasks/get", HasMethod: true, Name: "t-2", HasName: true}},
		{name: "update other task", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/update","params":{"taskId":"t-1","inputResponses":{},` + v + `}}`, h: Mirror{Method: "tasks/update", HasMethod: true, Name: "t-2", HasName: true}},
		{name: "no Mcp-Name on 2026", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/cancel","params":{"taskId":"t-1",` + v + `}}`, h: Mirror{Method: "tasks/cancel", HasMethod: true}},
		{name: "malformed base64", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1",` + v + `}}`, h: Mirror{Method: "tasks/get", HasMethod: true, Name: "=?base64?***?=", HasName: true}},
		{name: "2025 without headers", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1"}}`, ok: true},
		{name: "2025 result other task", body: `{"jsonrpc":"2.0","id":1,"method":"tasks/result","params":{"taskId":"t-1"}}`, h: Mirror{Name: "t-2", HasName: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = CheckMirror(tt.h, &m)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrHeaderMismatch)) {
				t.Fatalf("CheckMirror: %v, want ok %v", err, tt.ok)
			}
		})
	}
}
