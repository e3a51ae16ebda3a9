// Package devidptest serves the dev OIDC provider (internal/devidp) on
// loopback for the tests of the packages that trust it, and logs users in.
package devidptest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/devidp"
)

// Serve builds the provider of cfg on a loopback port and serves it until
// the test ends; the server's Client reaches it.
func Serve(t testing.TB, cfg devidp.Config) (*devidp.Provider, *httptest.Server) {
	t.Helper()
	p, ln, err := devidp.Listen(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return p, srv
}

// Login is user's access token from a password grant by the public client
// mcp-cli; anything but a 200 with a token fails the test.
func Login(t testing.TB, srv *httptest.Server, p *devidp.Provider, user, password string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {user}, "password": {password}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("login %s: status %d, %v", user, resp.StatusCode, err)
	}
	return tok.AccessToken
}
