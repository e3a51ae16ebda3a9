package upstream

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKuadrantHeaders: to a Target with a Server, a request carries the headers
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
		server string // the Target's
		h      Headers
		want   map[string]string
	}{
		{name: "no server", method: http.MethodPost, h: Headers{Method: "tools/call", Name: "pods_list"}, want: map[string]string{}},
		{name: "tools/call", method: http.MethodPost, server: server, h: Headers{Method: "tools/call", Name: "pods_list"},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "tools/call", "x-mcp-toolname": "pods_list"}},
		{name: "prompts/get", method: http.MethodPost, server: server, h: Headers{Method: "prompts/get", Name: "greet"},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "prompts/get", "x-mcp-promptname": "greet"}},
		{name: "resources/read", method: http.MethodPost, server: server, h: Headers{Method: "resources/read", Name: "k8s://pods/a"},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "resources/read", "x-mcp-resourceuri": "k8s://pods/a"}},
		{name: "tools/list", method: http.MethodPost, server: server, h: Headers{Method: "tools/list"},
			want: map[string]string{"x-mcp-servername": server, "x-mcp-method": "tools/list"}},
		{name: "response", method: http.MethodPost, server: server, h: Headers{},
			want: map[string]string{"x-mcp-servername": server}},
		{name: "GET", method: http.MethodGet, server: server, h: Headers{Session: "s"},
			want: map[string]string{"x-mcp-servername": server}},
		{name: "DELETE", method: http.MethodDelete, server: server, h: Headers{Session: "s"},
			want: map[string]string{"x-mcp-servername": server}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			switch tc.method {
			case http.MethodPost:
				resp, err := c.Post(t.Context(), Target{Server: tc.server, URL: srv.URL}, tc.h, []byte("{}"))
				if err != nil {
					t.Fatal(err)
				}
				Drain(resp)
			case http.MethodGet:
				resp, err := c.Get(t.Context(), Target{Server: tc.server, URL: srv.URL}, tc.h)
				if err != nil {
					t.Fatal(err)
				}
				Drain(resp)
			case http.MethodDelete:
				if err := c.Delete(t.Context(), Target{Server: tc.server, URL: srv.URL}, tc.h); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("x-mcp-* headers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRevisionHeaders: Mcp-Method and Mcp-Name go to a 2026-07-28 server
// and to one whose revision is not known yet, never to a 2025 session.
func TestRevisionHeaders(t *testing.T) {
	srv := newHeaderSink(t)
	c := New(Config{})
	for _, tc := range []struct {
		name, version string
		want          bool
	}{
		{name: "2026-07-28", version: Stateless, want: true},
		{name: "not known yet", version: "", want: true},
		{name: "2025-11-25", version: "2025-11-25", want: false},
		{name: "2025-03-26", version: "2025-03-26", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Post(t.Context(), Target{Server: "ns/a", URL: srv.URL}, Headers{Version: tc.version, Method: "tools/call", Name: "add"}, []byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			Drain(resp)
			method, name := srv.got.Get("Mcp-Method"), srv.got.Get("Mcp-Name")
			if tc.want && (method != "tools/call" || name != "add") || !tc.want && (method != "" || name != "") {
				t.Errorf("Mcp-Method %q, Mcp-Name %q; want them sent: %v", method, name, tc.want)
			}
			if srv.got.Get("X-Mcp-Method") != "tools/call" || srv.got.Get("X-Mcp-Toolname") != "add" || srv.got.Get("Mcp-Protocol-Version") != tc.version {
				t.Errorf("headers %v", srv.got)
			}
		})
	}
}

// TestParamHeaders: Headers.Params go to a server of the stateless
// revision only (never to a 2025 session, nor to a server whose revision is
// not known yet), each once as given; more than MaxParams is refused and
// nothing is sent.
func TestParamHeaders(t *testing.T) {
	srv := newHeaderSink(t)
	c := New(Config{})
	params := []Param{{Name: "Mcp-Param-Region", Value: "us"}, {Name: "Mcp-Param-Text", Value: "=?base64?IHBhZGRlZCA=?="}}
	many := make([]Param, MaxParams+1)
	for i := range many {
		many[i] = Param{Name: "Mcp-Param-P" + strings.Repeat("x", i), Value: "v"}
	}
	for _, tc := range []struct {
		name, version string
		params        []Param
		want          map[string][]string
		refused       bool
	}{
		{name: "2026-07-28", version: Stateless, params: params, want: map[string][]string{"Mcp-Param-Region": {"us"}, "Mcp-Param-Text": {"=?base64?IHBhZGRlZCA=?="}}},
		{name: "as many as allowed", version: Stateless, params: many[:MaxParams], want: func() map[string][]string {
			m := map[string][]string{}
			for _, p := range many[:MaxParams] {
				m[p.Name] = []string{"v"}
			}
			return m
		}()},
		{name: "2025-11-25", version: "2025-11-25", params: params, want: map[string][]string{}},
		{name: "not known yet", version: "", params: params, want: map[string][]string{}},
		{name: "too many", version: Stateless, params: many, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.got = nil
			resp, err := c.Post(t.Context(), Target{Server: "ns/a", URL: srv.URL}, Headers{Version: tc.version, Method: "tools/call", Name: "add", Params: tc.params}, []byte("{}"))
			if tc.refused {
				if err == nil {
					Drain(resp)
					t.Fatal("Post sent more than MaxParams Mcp-Param headers")
				}
				if srv.got != nil {
					t.Fatal("a refused request reached the server")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			Drain(resp)
			sent := map[string][]string{}
			for k, v := range srv.got {
				if strings.HasPrefix(k, "Mcp-Param-") {
					sent[k] = v
				}
			}
			if diff := cmp.Diff(tc.want, sent); diff != "" {
				t.Errorf("Mcp-Param headers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNameEncoded: an Mcp-Name a header cannot carry as it is (a URI
// beyond ASCII, say) goes in its =?base64?…?= form; a plain one as it is.
func TestNameEncoded(t *testing.T) {
	srv := newHeaderSink(t)
	c := New(Config{})
	for _, tc := range []struct{ name, want string }{
		{name: "file:///r/plain.txt", want: "file:///r/plain.txt"},
		{name: "file:///r/\u00e9t\u00e9.txt", want: "=?base64?ZmlsZTovLy9yL8OpdMOpLnR4dA==?="},
	} {
		resp, err := c.Post(t.Context(), Target{Server: "ns/a", URL: srv.URL}, Headers{Version: Stateless, Method: "resources/read", Name: tc.name}, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		Drain(resp)
		if v := srv.got.Get("Mcp-Name"); v != tc.want {
			t.Errorf("Mcp-Name %q, want %q", v, tc.want)
		}
	}
}

// headerSink answers every request 202 and keeps the headers of the last
// one it got (read after the answer came back).
type headerSink struct {
	*httptest.Server
	got http.Header
}

func newHeaderSink(t *testing.T) *headerSink {
	s := &headerSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.got = r.Header.Clone()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}
