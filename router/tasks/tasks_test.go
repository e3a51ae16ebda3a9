package tasks

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/internal/taskid"
	"github.com/mcp-authz/mcp-authz/mcpparse"
)

var opts = mcpparse.Options{CaseSensitiveKeys: true}

func aead(t *testing.T, b byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTable: a sealed id opens for its caller only, under any key still
// held, and is remembered for that caller and server only.
func TestTable(t *testing.T) {
	current, retired, other := aead(t, 1), aead(t, 2), aead(t, 3)
	old, err := New(8, []cipher.AEAD{retired})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := New(8, []cipher.AEAD{current, retired})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := New(8, []cipher.AEAD{other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(8, nil); err == nil {
		t.Error("New without a key succeeded")
	}
	alice := Caller{Issuer: "https://idp", Subject: "alice"}
	route := taskid.Route{Name: "w_job"}
	task := taskid.Task{Issuer: alice.Issuer, Subject: alice.Subject, Server: "ns/w", Tool: "job", Upstream: "up-1"}
	seal := func(tb *Table) string {
		t.Helper()
		id, err := tb.Seal(route, task)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	id, oldID, foreignID := seal(tb), seal(old), seal(foreign)
	for _, tc := range []struct {
		name   string
		caller Caller
		id     string
		ok     bool
	}{
		{name: "its caller", caller: alice, id: id, ok: true},
		{name: "a retired key", caller: alice, id: oldID, ok: true},
		{name: "another subject", caller: Caller{Issuer: alice.Issuer, Subject: "bob"}, id: id},
		{name: "another issuer", caller: Caller{Issuer: "https://other", Subject: "alice"}, id: id},
		{name: "a key not held", caller: alice, id: foreignID},
		{name: "the server's own id", caller: alice, id: "up-1"},
		{name: "rerouted", caller: alice, id: reroute(t, id, "w_other")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotRoute, got, ok := tb.Open(tc.caller, tc.id)
			if ok != tc.ok {
				t.Fatalf("Open ok %v, want %v", ok, tc.ok)
			}
			if ok && (gotRoute != route || got != task) {
				t.Errorf("Open = %+v %+v, want %+v %+v", gotRoute, got, route, task)
			}
		})
	}
	if got, ok := tb.Known(alice, "ns/w", "up-1"); !ok || got != id {
		t.Errorf("Known = %q %v, want %q", got, ok, id)
	}
	for _, k := range []struct {
		c              Caller
		server, upstID string
	}{
		{Caller{Issuer: alice.Issuer, Subject: "bob"}, "ns/w", "up-1"},
		{alice, "ns/other", "up-1"},
		{alice, "ns/w", "up-2"},
	} {
		if _, ok := tb.Known(k.c, k.server, k.upstID); ok {
			t.Errorf("Known(%+v, %s, %s) found a task", k.c, k.server, k.upstID)
		}
	}
}

// reroute is id with its clear route renamed to name: its task, sealed
// with the route it had as additional data, must not open.
func reroute(t *testing.T, id, name string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(id, taskid.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the route's name and target
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			t.Fatal("not a sealed id")
		}
		b = b[k+int(n):]
	}
	out := binary.AppendUvarint(nil, uint64(len(name)))
	out = append(binary.AppendUvarint(append(out, name...), 0), b...)
	v := taskid.Prefix + base64.RawURLEncoding.EncodeToString(out)
	if r, ok := taskid.RouteOf(v); !ok || r.Name != name {
		t.Fatal("route not renamed")
	}
	return v
}

// TestCreated: the task id of either revision's CreateTaskResult is
// replaced by the sealed one, or blanked; nothing else changes.
func TestCreated(t *testing.T) {
	seal := func(id string) string {
		if id == "up-1" {
			return "sealed-1"
		}
		return ""
	}
	for _, tc := range []struct {
		name, result, want string
	}{
		{name: "2026-07-28", result: `{"resultType":"task","taskId":"up-1","status":"working"}`, want: `{"resultType":"task","taskId":"sealed-1","status":"working"}`},
		{name: "2025-11-25", result: `{"task":{"taskId":"up-1","status":"working"}}`, want: `{"task":{"taskId":"sealed-1","status":"working"}}`},
		{name: "cannot be sealed", result: `{"task":{"taskId":"up-2"}}`, want: `{"task":{"taskId":""}}`},
		{name: "not a task", result: `{"content":[{"type":"text","text":"taskId"}]}`, want: `{"content":[{"type":"text","text":"taskId"}]}`},
		{name: "a complete result naming a taskId", result: `{"resultType":"complete","taskId":"up-1"}`, want: `{"resultType":"complete","taskId":"up-1"}`},
		{name: "not an object", result: `"taskId"`, want: `"taskId"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Created([]byte(tc.result), opts, seal); string(got) != tc.want {
				t.Errorf("Created = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRestore: the answer to a task request names the task by the id the
// client sent; another task's id is blanked.
func TestRestore(t *testing.T) {
	for _, tc := range []struct {
		name, result, want string
	}{
		{name: "tasks/get", result: `{"taskId":"up-1","status":"completed"}`, want: `{"taskId":"sealed-1","status":"completed"}`},
		{name: "tasks/result meta", result: `{"content":[],"_meta":{"` + RelatedTask + `":{"taskId":"up-1"}}}`, want: `{"content":[],"_meta":{"` + RelatedTask + `":{"taskId":"sealed-1"}}}`},
		{name: "both", result: `{"taskId":"up-1","_meta":{"` + RelatedTask + `":{"taskId":"up-1"}}}`, want: `{"taskId":"sealed-1","_meta":{"` + RelatedTask + `":{"taskId":"sealed-1"}}}`},
		{name: "another task", result: `{"taskId":"up-9"}`, want: `{"taskId":""}`},
		{name: "none", result: `{"content":[]}`, want: `{"content":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Restore([]byte(tc.result), opts, "up-1", "sealed-1"); string(got) != tc.want {
				t.Errorf("Restore = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestMessage: status notifications about a task the caller does not know
// are dropped, a related-task _meta is rewritten or blanked, and other
// messages pass as they are.
func TestMessage(t *testing.T) {
	name := func(id string) (string, bool) {
		if id == "up-1" {
			return "sealed-1", true
		}
		return "", false
	}
	related := func(id string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"elicitation/create","params":{"message":"m","_meta":{"` + RelatedTask + `":{"taskId":"` + id + `"}}}}`
	}
	for _, tc := range []struct {
		name, method, data, want string
		ok                       bool
	}{
		{name: "status, known", method: "notifications/tasks/status", data: `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"up-1","status":"working"}}`, want: `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"sealed-1","status":"working"}}`, ok: true},
		{name: "extension status, known", method: "notifications/tasks", data: `{"jsonrpc":"2.0","method":"notifications/tasks","params":{"taskId":"up-1"}}`, want: `{"jsonrpc":"2.0","method":"notifications/tasks","params":{"taskId":"sealed-1"}}`, ok: true},
		{name: "status, unknown", method: "notifications/tasks/status", data: `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"up-2"}}`},
		{name: "status without a task", method: "notifications/tasks/status", data: `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{}}`},
		{name: "related, known", method: "elicitation/create", data: related("up-1"), want: related("sealed-1"), ok: true},
		{name: "related, unknown", method: "elicitation/create", data: related("up-2"), want: related(""), ok: true},
		{name: "other", method: "notifications/message", data: `{"jsonrpc":"2.0","method":"notifications/message","params":{"taskId":"up-2"}}`, want: `{"jsonrpc":"2.0","method":"notifications/message","params":{"taskId":"up-2"}}`, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Message([]byte(tc.data), tc.method, opts, name)
			if ok != tc.ok {
				t.Fatalf("Message ok %v, want %v", ok, tc.ok)
			}
			if ok && string(got) != tc.want {
				t.Errorf("Message = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestListPage: only the tasks the caller was given are listed, by their
// sealed ids, with the page's cursor.
func TestListPage(t *testing.T) {
	name := func(id string) (string, bool) {
		if id == "up-1" {
			return "sealed-1", true
		}
		return "", false
	}
	got, cursor, err := ListPage([]byte(`{"tasks":[{"taskId":"up-1","status":"working"},{"taskId":"up-2"},{"status":"x"}],"nextCursor":"c2"}`), opts, name)
	if err != nil {
		t.Fatal(err)
	}
	want := []json.RawMessage{json.RawMessage(`{"taskId":"sealed-1","status":"working"}`)}
	if diff := cmp.Diff(want, got); diff != "" || cursor != "c2" {
		t.Errorf("ListPage cursor %q (-want +got):\n%s", cursor, diff)
	}
	if _, cursor, err := ListPage([]byte(`{"tasks":[]}`), opts, name); err != nil || cursor != "" {
		t.Errorf("last page: cursor %q, %v", cursor, err)
	}
	if _, _, err := ListPage([]byte(`{"tasks":{}}`), opts, name); err == nil {
		t.Error("a tasks member that is no array was read")
	}
}
