package authz

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/taskid"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// inputRecorder is the policy engine, keeping the last input it decided.
type inputRecorder struct {
	*policy.Engine
	mu   sync.Mutex
	last *policy.Input
}

func (r *inputRecorder) Decide(ctx context.Context, in *policy.Input) policy.Decision {
	r.mu.Lock()
	cp := *in
	r.last = &cp
	r.mu.Unlock()
	return r.Engine.Decide(ctx, in)
}

func (r *inputRecorder) taken() *policy.Input {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.last
	r.last = nil
	return in
}

// sealedTask is a task id as the router seals it (authz holds no key: any
// key does).
func sealedTask(t *testing.T, name, target string) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	b, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	id, err := taskid.Seal(a, taskid.Route{Name: name, Target: target}, taskid.Task{Subject: "alice", Server: "x", Tool: "y", Upstream: "up-1"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func taskBody(method, id string, version bool) string {
	meta := ""
	if version {
		meta = `,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`
	}
	return `{"jsonrpc":"2.0","id":7,"method":"` + method + `","params":{"taskId":` + string(mustJSON(id)) + meta + `}}`
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestDecideTask: every task request is decided by policy with mcp.task
// (the server, the tool that created the task, the method); the assertion
// names the server and the tool, which the router holds the sealed id to;
// an id that names no registered tool, or the server's own, is denied
// without a token being exchanged; Mcp-Name must be the taskId.
func TestDecideTask(t *testing.T) {
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	servers := append([]registry.Server{{
		Name: "mcp-test/multi", Prefix: "multi_", URL: "http://127.0.0.1:8092/mcp",
		Targets: &registry.Targets{Argument: "cluster", Default: "dev", Values: map[string]registry.Target{"dev": {}, "prod": {}}},
	}}, testServers...)
	snap, err := registry.NewSnapshot(servers)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	// alice may poll tasks of echo and multi's job, and cancel none.
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "tasks", CEL: `
has(mcp.task) ? (mcp.task.tool in ["echo", "job"] || mcp.task.server == "default/mcp-tool") && mcp.task.method == "tasks/get" : true`}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &inputRecorder{Engine: policy.NewEngine(set)}
	x := &recordingExchanger{}
	s, err := New(Config{}, Deps{
		Registry: reg, Policy: rec, Exchanger: x, Signer: assertion.NewSigner(key),
		Verifier: fixedVerifier{&identity.Identity{Subject: "alice", Audience: []string{"mcp-gateway"}, Expiry: time.Now().Add(time.Hour)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	echo := sealedTask(t, "ev_echo", "")
	b64 := func(v string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?=" }
	auth := header("authorization", "Bearer "+callerToken)

	tests := []struct {
		name     string
		req      *Request
		status   int    // 0: allowed
		reason   string // of a denial
		task     *policy.Task
		audience string // of the token exchanged, #target when not the default; "" none
	}{
		{name: "get allowed", req: post(taskBody("tasks/get", echo, false), auth),
			task: &policy.Task{Server: "mcp-test/everything", Tool: "echo", Method: "tasks/get"}, audience: "mcp-test/everything"},
		{name: "cancel denied", req: post(taskBody("tasks/cancel", echo, false), auth), status: http.StatusForbidden, reason: ReasonTaskDenied,
			task: &policy.Task{Server: "mcp-test/everything", Tool: "echo", Method: "tasks/cancel"}, audience: "mcp-test/everything"},
		{name: "update denied", req: post(`{"jsonrpc":"2.0","id":7,"method":"tasks/update","params":{"taskId":"`+echo+`","inputResponses":{}}}`, auth), status: http.StatusForbidden, reason: ReasonTaskDenied,
			task: &policy.Task{Server: "mcp-test/everything", Tool: "echo", Method: "tasks/update"}, audience: "mcp-test/everything"},
		{name: "2025 result denied", req: post(taskBody("tasks/result", echo, false), auth), status: http.StatusForbidden, reason: ReasonTaskDenied,
			task: &policy.Task{Server: "mcp-test/everything", Tool: "echo", Method: "tasks/result"}, audience: "mcp-test/everything"},
		{name: "task of another tool", req: post(taskBody("tasks/get", sealedTask(t, "ev_other", ""), false), auth), status: http.StatusForbidden, reason: ReasonTaskDenied,
			task: &policy.Task{Server: "mcp-test/everything", Tool: "other", Method: "tasks/get"}, audience: "mcp-test/everything"},
		{name: "target of the id", req: post(taskBody("tasks/get", sealedTask(t, "multi_job", "prod"), false), auth),
			task: &policy.Task{Server: "mcp-test/multi", Tool: "job", Method: "tasks/get"}, audience: "mcp-test/multi#prod"},
		{name: "unknown target", req: post(taskBody("tasks/get", sealedTask(t, "multi_job", "staging"), false), auth), status: http.StatusForbidden, reason: ReasonTaskDenied},
		{name: "raw upstream id", req: post(taskBody("tasks/get", "up-1", false), auth), status: http.StatusForbidden, reason: ReasonTaskDenied},
		{name: "unregistered tool", req: post(taskBody("tasks/get", sealedTask(t, "gone_echo", ""), false), auth), status: http.StatusForbidden, reason: ReasonTaskDenied},
		{name: "2026 Mcp-Name matches", req: post(taskBody("tasks/get", echo, true), auth, header("mcp-method", "tasks/get"), header("mcp-name", echo), header("mcp-protocol-version", "2026-07-28")),
			task: &policy.Task{Server: "mcp-test/everything", Tool: "echo", Method: "tasks/get"}, audience: "mcp-test/everything"},
		{name: "2026 Mcp-Name in base64", req: post(taskBody("tasks/get", echo, true), auth, header("mcp-method", "tasks/get"), header("mcp-name", b64(echo)), header("mcp-protocol-version", "2026-07-28")),
			task: &policy.Task{Server: "mcp-test/everything", Tool: "echo", Method: "tasks/get"}, audience: "mcp-test/everything"},
		{name: "2026 Mcp-Name of another task", req: post(taskBody("tasks/get", echo, true), auth, header("mcp-method", "tasks/get"), header("mcp-name", sealedTask(t, "ev_echo", "")), header("mcp-protocol-version", "2026-07-28")),
			status: http.StatusBadRequest, reason: ReasonHeaderMismatch},
		{name: "2026 without Mcp-Name", req: post(taskBody("tasks/cancel", echo, true), auth, header("mcp-method", "tasks/cancel"), header("mcp-protocol-version", "2026-07-28")),
			status: http.StatusBadRequest, reason: ReasonHeaderMismatch},
		{name: "attached: the server's own id", req: post(taskBody("tasks/get", "up-1", false), auth, func(r *Request) { r.Host = "tool.example.com" }),
			task: &policy.Task{Server: "default/mcp-tool", Method: "tasks/get"}, audience: "default/mcp-tool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.mu.Lock()
			x.got = nil
			x.mu.Unlock()
			d := s.Decide(t.Context(), tt.req)
			in := rec.taken()
			if tt.status == 0 && !d.Allow {
				t.Fatalf("denied: %d %s", d.Status, d.Body())
			}
			if tt.status != 0 && (d.Allow || d.Status != tt.status || d.Reason != tt.reason) {
				t.Fatalf("got allow %v %d %s, want %d %s", d.Allow, d.Status, d.Reason, tt.status, tt.reason)
			}
			var got *policy.Task
			if in != nil {
				got = in.MCP.Task
				if in.MCP.Tool != nil {
					t.Errorf("mcp.tool %+v: a tool policy must not decide a task request", in.MCP.Tool)
				}
			}
			if diff := cmp.Diff(tt.task, got); diff != "" {
				t.Errorf("mcp.task (-want +got):\n%s", diff)
			}
			x.mu.Lock()
			var aud string
			if len(x.got) > 0 {
				aud = x.got[0].Audience
				if x.got[0].Target != "" {
					aud += "#" + x.got[0].Target
				}
			}
			x.mu.Unlock()
			if aud != tt.audience {
				t.Errorf("exchanged for %q, want %q", aud, tt.audience)
			}
			if !d.Allow {
				return
			}
			c, err := assertion.NewVerifier(key).Verify(d.Assertion, tt.req.Body, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := assertion.Claims{Method: tt.task.Method, Server: tt.task.Server, Tool: tt.task.Tool, Subject: "alice",
				Credential: assertion.CredentialHash("Bearer exchanged-for-" + strings.Split(tt.audience, "#")[0])}
			if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(assertion.Claims{}, "CallerExpiry", "BodyHash", "IssuedAt", "Expiry")); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}
