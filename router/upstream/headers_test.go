package upstream

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKuadrantHeaders: with Server set, a request carries the headers
// Kuadrant's router sets (x-mcp-servername, x-mcp-method, and the name
// under the header of its method); without it, none of them.
func TestKuadrantHeaders(t *testing.T) {
	var got map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = map[string]string{}
		for k, v := range r.Header {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-mcp-") {
				got[lk] = strings.Join(v, "|")
			}
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	c := New(Config{})
	const server = "mcp-test/kubernetes-mcp"
	for _, tc := range []struct {
		name   string
		method string // HTTP method
		h      Headers
		want   map[string]string
	}{
		{name: "no server", method: http.MethodPost, h: Headers{Method: "tools/call", Name: "pods_list"}, want: map[string]string{}},
		{name: "tools/call", method: http.MethodPost, h: Headers{Method: "tools/call", Name: "pods_list", Server: server},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "tools/call", "x-mcp-toolname": "pods_list"}},
		{name: "prompts/get", method: http.MethodPost, h: Headers{Method: "prompts/get", Name: "greet", Server: server},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "prompts/get", "x-mcp-promptname": "greet"}},
		{name: "resources/read", method: http.MethodPost, h: Headers{Method: "resources/read", Name: "k8s://pods/a", Server: server},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "resources/read", "x-mcp-resourceuri": "k8s://pods/a"}},
		{name: "tools/list", method: http.MethodPost, h: Headers{Method: "tools/list", Server: server},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "tools/list"}},
		{name: "response", method: http.MethodPost, h: Headers{Server: server},
			want: map[string]string{"x-mcp-servername": server}},
		{name: "GET", method: http.MethodGet, h: Headers{Session: "s", Server: server},
			want: map[string]string{"x-mcp-servername": server}},
		{name: "DELETE", method: http.MethodDelete, h: Headers{Session: "s", Server: server},
			want: map[string]string{"x-mcp-servername": server}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			switch tc.method {
			case http.MethodPost:
				resp, err := c.Post(t.Context(), Target{URL: srv.URL}, tc.h, []byte("{}"))
				if err != nil {
					t.Fatal(err)
				}
				Drain(resp)
			case http.MethodGet:
				resp, err := c.Get(t.Context(), Target{URL: srv.URL}, tc.h)
				if err != nil {
					t.Fatal(err)
				}
				Drain(resp)
			case http.MethodDelete:
				if err := c.Delete(t.Context(), Target{URL: srv.URL}, tc.h); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("x-mcp-* headers (-want +got):\n%s", diff)
			}
		})
	}
}
