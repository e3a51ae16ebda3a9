package router

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestListAndCall(t *testing.T) {
	e, _, _ := twoServers(t, nil)
	var mu sync.Mutex
	var progress []string
	cs, _ := e.client("alice", &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, r.Params.Message)
		},
		ElicitationHandler: func(_ context.Context, r *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes to " + r.Params.Message}}, nil
		},
	})
	ctx := t.Context()

	want := []string{"alpha_ask", "alpha_echo", "alpha_progress", "alpha_slow", "beta_add"}
	if diff := cmp.Diff(want, toolNames(t, cs)); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		tool string
		args map[string]any
		want string
	}{
		{name: "sse answer, upstream token", tool: "alpha_echo", args: map[string]any{"text": "hi"}, want: "hi|Bearer up-ns/alpha"},
		{name: "json answer", tool: "beta_add", args: map[string]any{"a": 2, "b": 3}, want: "5"},
		{name: "elicitation round trip", tool: "alpha_ask", args: map[string]any{"text": "ok?"}, want: "accept:yes to ok?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			if got := resultText(t, res); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("progress streams through", func(t *testing.T) {
		p := &mcp.CallToolParams{Name: "alpha_progress", Arguments: map[string]any{"text": ""}}
		p.SetProgressToken("tok-1")
		res, err := cs.CallTool(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := resultText(t, res); got != "done" {
			t.Errorf("got %q", got)
		}
		// The client runs notification handlers asynchronously: wait for them.
		var got []string
		waitFor(t, "three progress notifications", func() bool {
			mu.Lock()
			defer mu.Unlock()
			got = slices.Clone(progress)
			return len(got) >= 3
		})
		if diff := cmp.Diff([]string{"step 1", "step 2", "step 3"}, got); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
	})

	t.Run("prompt", func(t *testing.T) {
		res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "beta_greet", Arguments: map[string]string{"who": "bob"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Messages[0].Content.(*mcp.TextContent).Text; got != "hello bob" {
			t.Errorf("prompt %q", got)
		}
		pl, err := cs.ListPrompts(ctx, nil)
		if err != nil || len(pl.Prompts) != 1 || pl.Prompts[0].Name != "beta_greet" {
			t.Errorf("prompts %+v, %v", pl, err)
		}
	})

	t.Run("resource by uri", func(t *testing.T) {
		rl, err := cs.ListResources(ctx, nil)
		if err != nil || len(rl.Resources) != 1 || rl.Resources[0].URI != "file:///beta/readme" {
			t.Fatalf("resources %+v, %v", rl, err)
		}
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///beta/readme"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Contents[0].Text != "beta readme" {
			t.Errorf("read %+v", res.Contents[0])
		}
		tl, err := cs.ListResourceTemplates(ctx, nil)
		if err != nil || len(tl.ResourceTemplates) != 1 || tl.ResourceTemplates[0].URITemplate != "file:///beta/notes/{name}" {
			t.Fatalf("templates %+v, %v", tl, err)
		}
		res, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///beta/notes/todo"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Contents[0].Text != "note todo" {
			t.Errorf("read by template %+v", res.Contents[0])
		}
		if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///nowhere"}); err == nil {
			t.Error("unknown resource read succeeded")
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := cs.Ping(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no upstream failures", func(t *testing.T) {
		if n := e.router.UpstreamFailures.Load(); n != 0 {
			t.Errorf("%d upstream failures", n)
		}
	})

	t.Run("unknown prefixes are refused", func(t *testing.T) {
		for _, name := range []string{"gamma_echo", "nothing"} {
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}}); err == nil || !strings.Contains(err.Error(), "unknown name") {
				t.Errorf("%s: err = %v", name, err)
			}
		}
	})
}
