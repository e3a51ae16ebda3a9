//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// listenPolicy lets a caller read the server's resources only with a role
// on it (alice has some, bob none); everything else is allowed.
const listenPolicy = `policies:
  - name: reads
    cel: >-
      mcp.method != "resources/read" ||
      (has(token.resource_access) && mcp.server in token.resource_access)
`

// listenStream is one client's subscriptions/listen through the front: its
// events, in order, until the stream ends.
type listenStream struct {
	status int
	reason string
	events chan string
}

func openListenThrough(ctx context.Context, t *testing.T, front, token, filter string) *listenStream {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":"L","method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"it","version":"1"}},"notifications":` + filter + `}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, front, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ls := &listenStream{status: resp.StatusCode, events: make(chan string, 64)}
	if resp.StatusCode != http.StatusOK {
		var a struct {
			Error struct {
				Data struct {
					Reason string `json:"reason"`
				} `json:"data"`
			} `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&a)
		ls.reason = a.Error.Data.Reason
		close(ls.events)
		return ls
	}
	go func() {
		defer close(ls.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				ls.events <- data
			}
		}
	}()
	return ls
}

// await returns the first event containing want, failing after 20s or at
// the stream's end; seen collects every event read.
func (ls *listenStream) await(t *testing.T, want string, seen *[]string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-ls.events:
			if !ok {
				t.Fatalf("the stream ended before %s; got %q", want, *seen)
			}
			*seen = append(*seen, ev)
			if strings.Contains(ev, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s within 20s; got %q", want, *seen)
		}
	}
}

// TestListenPerUser: issue 12's subscriptions/listen through front ->
// authz -> router with the dev provider (identity and token exchange on),
// to a go-sdk 2026-07-28 server. alice, who may read the server's
// resources, subscribes to one and gets its updates; bob, who may not, is
// refused (403 resource_denied) before anything opens upstream, and his
// listen of tool list changes alone never carries the update, while it
// does carry the list change both may see.
func TestListenPerUser(t *testing.T) {
	const uri = "file:///shared/doc"
	s := mcp.NewServer(&mcp.Implementation{Name: "listen", Version: "1"}, &mcp.ServerOptions{
		SupportedProtocolVersions: []string{"2026-07-28"},
		SubscribeHandler:          func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler:        func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	mcp.AddTool(s, &mcp.Tool{Name: "pods_list"}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	s.AddResource(&mcp.Resource{URI: uri, Name: "doc"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, Text: "doc"}}}, nil
	})
	var listens atomic.Int64 // subscriptions/listen the server received
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	up := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Method") == "subscriptions/listen" {
			listens.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	p := startIdP(t, "")
	servers := fmt.Sprintf("servers:\n  - name: mcp-test/kubernetes-mcp\n    prefix: kube_\n    url: http://%s/mcp\n    resourcePrefixes: [\"file:///shared/\"]\n", up.Addr)
	a := startAggregate(t, 1, identityConfig(p)+servers+listenPolicy)
	alice, bob := p.login(t, "alice"), p.login(t, "bob")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var aliceSeen, bobSeen []string
	aliceStream := openListenThrough(ctx, t, a.front, alice, `{"toolsListChanged":true,"resourceSubscriptions":["`+uri+`"]}`)
	if aliceStream.status != http.StatusOK {
		t.Fatalf("alice's listen: %d %s", aliceStream.status, aliceStream.reason)
	}
	aliceStream.await(t, "notifications/subscriptions/acknowledged", &aliceSeen)
	if n := listens.Load(); n != 1 {
		t.Fatalf("the server saw %d listens after alice's, want 1", n)
	}
	refused := openListenThrough(ctx, t, a.front, bob, `{"toolsListChanged":true,"resourceSubscriptions":["`+uri+`"]}`)
	if refused.status != http.StatusForbidden || refused.reason != "resource_denied" {
		t.Fatalf("bob's listen of %s: %d %q, want 403 resource_denied", uri, refused.status, refused.reason)
	}
	if n := listens.Load(); n != 1 {
		t.Fatalf("bob's refused listen reached the server (%d listens)", n)
	}
	bobStream := openListenThrough(ctx, t, a.front, bob, `{"toolsListChanged":true}`)
	if bobStream.status != http.StatusOK {
		t.Fatalf("bob's listen of list changes: %d %s", bobStream.status, bobStream.reason)
	}
	bobStream.await(t, "notifications/subscriptions/acknowledged", &bobSeen)

	if err := s.ResourceUpdated(t.Context(), &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	aliceStream.await(t, `"uri":"`+uri+`"`, &aliceSeen)
	mcp.AddTool(s, &mcp.Tool{Name: "pods_delete"}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	aliceStream.await(t, "notifications/tools/list_changed", &aliceSeen)
	bobStream.await(t, "notifications/tools/list_changed", &bobSeen)
	for _, ev := range bobSeen {
		if strings.Contains(ev, "resources/updated") || strings.Contains(ev, uri) {
			t.Errorf("bob's stream carried %s", ev)
		}
	}
	for _, tok := range []string{alice, bob} {
		a.noTokenInLogs(t, tok)
	}
}
