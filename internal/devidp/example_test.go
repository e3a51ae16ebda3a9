package devidp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/devidp"
)

// Serve the dev realm on a free loopback port and log alice in with the
// public client mcp-cli.
func ExampleListen() {
	cfg, err := devidp.LoadConfig("../../dev/realm.yaml")
	if err != nil {
		panic(err)
	}
	cfg.TokenLifetime = 5 * time.Minute
	p, ln, err := devidp.Listen(cfg, "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: p.Handler()}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	resp, err := http.PostForm(p.TokenURL(), url.Values{
		"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {"alice"}, "password": {"alice"},
	})
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, tok.TokenType, tok.ExpiresIn, tok.AccessToken != "")
	// Output: 200 Bearer 300 true
}
