package exchange_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/devidp/realms"
	"github.com/mcp-authz/mcp-authz/internal/jwttest"
)

const (
	kubeServer = "mcp-test/kubernetes-mcp"
	secretFile = "../dev/gateway-secret"
)

// chain is the dev provider over HTTPS with the realms of dev/realm-a.yaml
// and dev/realm-b.yaml (identity chaining), a caller verifier of realm A,
// and an HTTP client that trusts the test CA and counts token requests
// per token URL.
type chain struct {
	srv    *realms.Server
	a, b   *devidp.Provider
	caFile string
	client *http.Client
	caller *identity.Verifier
	agent  *rsa.PrivateKey // realm B's client kube-agent (private_key_jwt)
	// federated is realm B's client kube-fed: it authenticates with a
	// client assertion signed by this key, read from a file.
	federated *rsa.PrivateKey

	mu    sync.Mutex
	calls map[string]int // token requests per URL
}

// keyPair is generated once: RSA key generation is slow on a loaded machine.
var keyPair = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// newChain starts the provider; mod edits the realms first.
func newChain(t testing.TB, mod func(a, b *devidp.Config)) *chain {
	t.Helper()
	a, err := devidp.LoadConfig("../dev/realm-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := devidp.LoadConfig("../dev/realm-b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a.TokenLifetime, b.TokenLifetime = 5*time.Minute, 5*time.Minute
	c := &chain{calls: map[string]int{}}
	c.agent, c.federated = keyPair()
	b.Clients = append(b.Clients,
		devidp.Client{ID: "kube-agent", JWKS: jwttest.Key{Private: c.agent, KID: "agent-1"}.JWKS(t), JWTAuthorizationGrant: []string{"domain-a"}, GrantAudiences: []string{"kubernetes"}},
		devidp.Client{ID: "kube-fed", JWKS: jwttest.Key{Private: c.federated, KID: "fed-1"}.JWKS(t), JWTAuthorizationGrant: []string{"domain-a"}, GrantAudiences: []string{"kubernetes"}},
	)
	if mod != nil {
		mod(&a, &b)
	}
	c.caFile = filepath.Join(t.TempDir(), "ca.pem")
	c.srv, err = realms.New(realms.Config{Realms: []devidp.Config{a, b}, TLS: &realms.TLSConfig{CAFile: c.caFile}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- c.srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devidp: %v", err)
		}
	})
	c.a, c.b = c.srv.Realm("domain-a"), c.srv.Realm("domain-b")
	base := c.srv.Client()
	c.client = &http.Client{Transport: countingTransport{base.Transport, c}}
	c.caller, err = identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: c.a.Issuer(), Audiences: []string{"mcp-gateway"}}},
	}, identity.Deps{HTTPClient: c.client})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingTransport counts the POSTs to each URL.
type countingTransport struct {
	base http.RoundTripper
	c    *chain
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		t.c.mu.Lock()
		t.c.calls[r.URL.String()]++
		t.c.mu.Unlock()
	}
	return t.base.RoundTrip(r)
}

func (c *chain) callsTo(u string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[u]
}

// login is a caller token of user at realm A, and its verified identity.
func (c *chain) login(t testing.TB, user string) (string, *identity.Identity) {
	t.Helper()
	resp, err := c.srv.Client().PostForm(c.a.TokenURL(), url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {user}, "password": {user}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: status %d, %v", user, resp.StatusCode, err)
	}
	id, err := c.caller.Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatalf("Verify(%s's token): %v", user, err)
	}
	return tok.AccessToken, id
}

// hub is the one-step profile of realm A: the caller's token exchanged for
// the Kubernetes MCP server.
func (c *chain) hub() exchange.Profile {
	return exchange.Profile{
		Steps:  []exchange.Step{{TokenURL: c.a.TokenURL(), ClientID: "mcp-gateway", ClientSecretFile: secretFile, Audience: kubeServer}},
		Expect: &exchange.Expect{Issuer: c.a.Issuer(), Audience: kubeServer},
	}
}

// spoke is the chain A→B: a JWT authorization grant for B from A, then
// B's token for cluster B's API server.
func (c *chain) spoke() exchange.Profile {
	return exchange.Profile{
		Steps: []exchange.Step{
			{TokenURL: c.a.TokenURL(), ClientID: "mcp-gateway", ClientSecretFile: secretFile, Audience: c.b.Issuer()},
			{Grant: exchange.GrantJWTBearer, TokenURL: c.b.TokenURL(), ClientID: "mcp-gateway", ClientSecretFile: secretFile, Audience: "kubernetes"},
		},
		Expect: &exchange.Expect{Issuer: c.b.Issuer(), Audience: "kubernetes"},
	}
}

// newClient is an exchange.Client of profiles, with no default profile,
// whose HTTP client trusts the test CA and counts token requests.
func (c *chain) newClient(t testing.TB, profiles map[string]exchange.Profile, mod func(*exchange.Config)) *exchange.Client {
	t.Helper()
	cfg := exchange.Config{Profiles: profiles}
	if mod != nil {
		mod(&cfg)
	}
	x, err := exchange.New(cfg, exchange.Deps{HTTPClient: c.client, Verifier: c.caller})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func claims(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	var c map[string]any
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// writeKey writes k as a PKCS #8 PEM file.
func writeKey(t testing.TB, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestChain is identity chaining across domains with the dev provider over
// HTTPS: alice of domain A gets, through the gateway, domain B's token for
// cluster B's API server, with every client authentication at B; and the
// one-step profile of A beside it. Neither token is a caller credential.
func TestChain(t *testing.T) {
	c := newChain(t, nil)
	fedFile := filepath.Join(t.TempDir(), "token")
	fedToken := func() string {
		now := time.Now().Unix()
		return jwttest.Key{Private: c.federated, KID: "fed-1"}.Sign(t, map[string]any{"iss": "kube-fed", "sub": "kube-fed", "aud": c.b.TokenURL(), "iat": now, "exp": now + 60, "jti": rand.Text()}, "JWT")
	}
	writeFed := func() {
		if err := os.WriteFile(fedFile, []byte(fedToken()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFed()
	keyFile := writeKey(t, c.agent)
	at := func(mod func(s *exchange.Step)) exchange.Profile {
		p := c.spoke()
		mod(&p.Steps[1])
		return p
	}
	profiles := map[string]exchange.Profile{
		"hub":   c.hub(),
		"spoke": c.spoke(),
		"post":  at(func(s *exchange.Step) { s.AuthStyle = "post" }),
		"idjag": func() exchange.Profile {
			p := c.spoke()
			p.Steps[0].RequestedTokenType = exchange.TokenTypeIDJAG
			return p
		}(),
		"key": at(func(s *exchange.Step) {
			s.ClientID, s.ClientSecretFile, s.PrivateKeyFile, s.KeyID = "kube-agent", "", keyFile, "agent-1"
		}),
		"federated": at(func(s *exchange.Step) { s.ClientID, s.ClientSecretFile, s.FederatedTokenFile = "kube-fed", "", fedFile }),
	}
	x := c.newClient(t, profiles, nil)
	tests := []struct {
		name    string
		profile string
		iss     string
		aud     string
		sub     string // preferred_username
		steps   int
	}{
		{"A only (hub)", "hub", c.a.Issuer(), kubeServer, "alice", 1},
		{"A to B, client_secret_basic", "spoke", c.b.Issuer(), "kubernetes", "alice.liddell", 2},
		{"A to B, client_secret_post", "post", c.b.Issuer(), "kubernetes", "alice.liddell", 2},
		{"A to B, ID-JAG", "idjag", c.b.Issuer(), "kubernetes", "alice.liddell", 2},
		{"A to B, private_key_jwt", "key", c.b.Issuer(), "kubernetes", "alice.liddell", 2},
		{"A to B, federated token file", "federated", c.b.Issuer(), "kubernetes", "alice.liddell", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, id := c.login(t, "alice")
			tok, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: tt.profile, Target: "b"})
			if err != nil {
				t.Fatalf("Exchange(%s): %v", tt.profile, err)
			}
			cl := claims(t, tok.AccessToken)
			if cl["iss"] != tt.iss || tok.Claims["iss"] != tt.iss || cl["preferred_username"] != tt.sub {
				t.Errorf("token iss %v, user %v; want %s, %s", cl["iss"], cl["preferred_username"], tt.iss, tt.sub)
			}
			if aud, _ := cl["aud"].([]any); len(aud) != 1 || aud[0] != tt.aud {
				if cl["aud"] != tt.aud {
					t.Errorf("token aud %v, want %s", cl["aud"], tt.aud)
				}
			}
			if tok.Profile != tt.profile || tok.Target != "b" || len(tok.Steps) != tt.steps {
				t.Errorf("Token{Profile: %q, Target: %q, Steps: %v}", tok.Profile, tok.Target, tok.Steps)
			}
			if !tok.Expiry.After(time.Now()) {
				t.Errorf("Expiry %v", tok.Expiry)
			}
			// The profile's token is no caller credential: the caller
			// verifier trusts domain A for aud mcp-gateway only.
			if _, err := c.caller.Verify(t.Context(), tok.AccessToken); err == nil {
				t.Errorf("the caller verifier accepted the %s token", tt.profile)
			}
			// Cached: a second call makes no token request.
			before := c.callsTo(c.a.TokenURL()) + c.callsTo(c.b.TokenURL())
			again, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: tt.profile, Target: "b"})
			if err != nil || again.AccessToken != tok.AccessToken {
				t.Errorf("second Exchange: %v, same token %v", err, err == nil && again.AccessToken == tok.AccessToken)
			}
			if after := c.callsTo(c.a.TokenURL()) + c.callsTo(c.b.TokenURL()); after != before {
				t.Errorf("a cached exchange made %d token requests", after-before)
			}
		})
	}

	t.Run("caFile", func(t *testing.T) {
		// An HTTP client that trusts only the system roots: the profile's
		// caFile makes the test CA trusted, for its token endpoints and
		// for its expected issuer's discovery and keys.
		withCA, without := c.hub(), c.hub()
		withCA.CAFile = c.caFile
		x, err := exchange.New(exchange.Config{Profiles: map[string]exchange.Profile{"with": withCA, "without": without}}, exchange.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		raw, id := c.login(t, "alice")
		if _, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: "with"}); err != nil {
			t.Errorf("Exchange with caFile: %v", err)
		}
		if _, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: "without"}); !errors.Is(err, exchange.ErrUnavailable) {
			t.Errorf("Exchange without caFile: %v, want ErrUnavailable (certificate not trusted)", err)
		}
	})

	t.Run("caFile of the default profile", func(t *testing.T) {
		def := func(ca string) exchange.Config {
			return exchange.Config{TokenURL: c.a.TokenURL(), ClientID: "mcp-gateway", ClientSecretFile: secretFile, CAFile: ca}
		}
		raw, id := c.login(t, "alice")
		for _, tt := range []struct {
			name, ca string
			want     error
		}{
			{"with", c.caFile, nil},
			{"without", "", exchange.ErrUnavailable},
		} {
			x, err := exchange.New(def(tt.ca), exchange.Deps{Verifier: c.caller})
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer})
			if (tt.want == nil && err != nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Exchange %s caFile: %v, want %v", tt.name, err, tt.want)
			}
		}
	})

	t.Run("federated token file read again when it changes", func(t *testing.T) {
		// B refuses a client assertion it has seen (jti): the file's first
		// token is used, so only a re-read token lets this call through.
		writeFed()
		raw, id := c.login(t, "alice")
		if _, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: "federated"}); err != nil {
			t.Fatalf("Exchange with the rotated token: %v", err)
		}
		raw, id = c.login(t, "alice")
		var refused *exchange.RetrieveError
		if _, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: "federated"}); !errors.As(err, &refused) || refused.ErrorCode != "invalid_client" {
			t.Fatalf("Exchange with the same file again: %v, want B's invalid_client (the assertion was replayed)", err)
		}
	})
}

// TestChainRefusals: what the token services refuse, and what the client
// refuses of them, each mapped to a refusal (RetrieveError: the caller is
// denied like an unknown tool), or to ErrUnavailable / ErrInvalidToken (503),
// with the step named.
func TestChainRefusals(t *testing.T) {
	rogueKey, _ := keyPair()
	c := newChain(t, func(a, b *devidp.Config) {
		// A peer B does not answer to: grants for another audience.
		a.Peers = append(a.Peers, devidp.Peer{Alias: "domain-c", Issuer: "https://c.example/realms/c"})
		for i := range a.Clients {
			if a.Clients[i].ID == "mcp-gateway" {
				a.Clients[i].AuthorizationGrants = append(a.Clients[i].AuthorizationGrants, "domain-c")
			}
		}
		a.GrantLifetime = 2 * time.Second
	})
	// rogue is a token endpoint of an issuer B does not trust, minting
	// grants for B signed with its own key.
	rogue := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().Unix()
		writeJSONAnswer(w, http.StatusOK, map[string]any{
			"access_token":      jwttest.Key{Private: rogueKey, KID: "rogue"}.Sign(t, map[string]any{"iss": "https://rogue.example", "sub": "alice", "preferred_username": "alice", "aud": c.b.Issuer(), "iat": now, "exp": now + 60, "jti": rand.Text()}, "JWT"),
			"issued_token_type": exchange.TokenTypeJWT, "token_type": "N_A", "expires_in": 60,
		})
	}))
	t.Cleanup(rogue.Close)
	// relay forwards to realm A's token endpoint; replay answers with the
	// first grant again, delay holds a grant until it has expired.
	var mu sync.Mutex
	var first []byte
	relay := func(replay bool, delay time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			kept := first
			mu.Unlock()
			if replay && kept != nil {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(kept)
				return
			}
			_ = r.ParseForm()
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, c.a.TokenURL(), strings.NewReader(r.PostForm.Encode()))
			req.Header = r.Header.Clone()
			resp, err := c.srv.Client().Do(req)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if replay {
				mu.Lock()
				first = body
				mu.Unlock()
			}
			time.Sleep(delay)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(body)
		}
	}
	replayer := httptest.NewServer(relay(true, 0))
	t.Cleanup(replayer.Close)
	delayer := httptest.NewServer(relay(false, 3*time.Second))
	t.Cleanup(delayer.Close)
	// stub answers step 2 as the test says.
	var stubAnswer atomic.Pointer[http.HandlerFunc]
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*stubAnswer.Load())(w, r) }))
	t.Cleanup(stub.Close)
	// bProxy stands for realm B's token endpoint, stopped in one case.
	bProxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	bProxy.Close()

	firstStep := func(tokenURL, audience string) exchange.Profile {
		p := c.spoke()
		p.Steps[0].TokenURL, p.Steps[0].Audience = tokenURL, audience
		return p
	}
	secondStep := func(tokenURL string) exchange.Profile {
		p := c.spoke()
		p.Steps[1].TokenURL = tokenURL
		return p
	}
	expectAud := c.spoke()
	expectAud.Expect.Audience = "mcp-gateway"
	profiles := map[string]exchange.Profile{
		"untrusted": firstStep(rogue.URL, c.b.Issuer()),
		"replay":    firstStep(replayer.URL, c.b.Issuer()),
		"expired":   firstStep(delayer.URL, c.b.Issuer()),
		"other-aud": firstStep(c.a.TokenURL(), "https://c.example/realms/c"),
		"no-token":  secondStep(stub.URL),
		"wrong-iss": secondStep(stub.URL),
		"wrong-aud": expectAud,
		"b-down":    secondStep(bProxy.URL),
	}
	x := c.newClient(t, profiles, func(cfg *exchange.Config) { cfg.Timeout = 10 * time.Second })
	aliceA, _ := c.login(t, "alice")
	tests := []struct {
		name    string
		profile string
		stub    http.HandlerFunc
		step    int    // the step named
		code    string // the refusal's RFC 6749 code; "" for a sentinel
		want    error
	}{
		{"grant signed by an untrusted issuer", "untrusted", nil, 2, "invalid_grant", nil},
		{"grant replayed", "replay", nil, 2, "invalid_grant", nil},
		{"grant expired", "expired", nil, 2, "invalid_grant", nil},
		{"grant for another audience", "other-aud", nil, 2, "invalid_grant", nil},
		{"200 without a token", "no-token", func(w http.ResponseWriter, r *http.Request) {
			writeJSONAnswer(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 60})
		}, 2, "", exchange.ErrUnavailable},
		{"a token of the wrong issuer", "wrong-iss", func(w http.ResponseWriter, r *http.Request) {
			// A genuine token, of realm A: not what the profile expects.
			writeJSONAnswer(w, http.StatusOK, map[string]any{"access_token": aliceA, "token_type": "Bearer", "expires_in": 60})
		}, 0, "", exchange.ErrInvalidToken},
		{"a token for another audience", "wrong-aud", nil, 0, "", exchange.ErrInvalidToken},
		{"realm B down", "b-down", nil, 2, "", exchange.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.stub != nil {
				stubAnswer.Store(&tt.stub)
			}
			if tt.profile == "replay" {
				// The first grant is used once, at B: that works.
				raw, id := c.login(t, "alice")
				if _, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: "replay"}); err != nil {
					t.Fatalf("the grant's first use: %v", err)
				}
			}
			raw, id := c.login(t, "alice")
			tok, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: tt.profile})
			if err == nil {
				t.Fatalf("Exchange(%s) = token of %v, want an error", tt.profile, tok.Claims["iss"])
			}
			var se *exchange.StepError
			if !errors.As(err, &se) || se.Step != tt.step || se.Profile != tt.profile {
				t.Fatalf("error %v: want a StepError of %s step %d", err, tt.profile, tt.step)
			}
			var refused *exchange.RetrieveError
			if tt.code != "" {
				if !errors.As(err, &refused) || refused.ErrorCode != tt.code {
					t.Errorf("error %v: want a refusal %s", err, tt.code)
				}
			} else if !errors.Is(err, tt.want) || errors.As(err, &refused) {
				t.Errorf("error %v: want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), raw) {
				t.Error("the error holds the caller's token")
			}
		})
	}
}

func writeJSONAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// TestChainConcurrentFirstCalls: 1,000 concurrent first calls for one
// (user, profile, target) make one chain: one request per step.
func TestChainConcurrentFirstCalls(t *testing.T) {
	c := newChain(t, nil)
	x := c.newClient(t, map[string]exchange.Profile{"spoke": c.spoke()}, nil)
	raw, id := c.login(t, "alice")
	r := exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: "spoke", Target: "b"}
	release := make(chan struct{})
	var wg sync.WaitGroup
	toks := make([]*exchange.Token, 1000)
	errs := make([]error, 1000)
	for i := range toks {
		wg.Go(func() {
			<-release
			toks[i], errs[i] = x.Exchange(t.Context(), r)
		})
	}
	close(release)
	wg.Wait()
	for i := range toks {
		if errs[i] != nil {
			t.Fatalf("Exchange #%d: %v", i, errs[i])
		}
		if toks[i].AccessToken != toks[0].AccessToken {
			t.Fatalf("Exchange #%d returned another token", i)
		}
	}
	// The login was one request to A's token endpoint.
	if got := c.callsTo(c.a.TokenURL()); got != 1 {
		t.Errorf("requests to realm A's token endpoint = %d, want 1 (step 1)", got)
	}
	if got := c.callsTo(c.b.TokenURL()); got != 1 {
		t.Errorf("requests to realm B's token endpoint = %d, want 1 (step 2)", got)
	}
	// Another target is another key: one more chain.
	r.Target = "c"
	if _, err := x.Exchange(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if got := c.callsTo(c.b.TokenURL()); got != 2 {
		t.Errorf("requests to realm B's token endpoint after another target = %d, want 2", got)
	}
}

// TestStatic: a static profile sends its file's secret, read again when
// the file changes, and never a caller's token.
func TestStatic(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		// A new file swapped in, as a Secret volume does.
		tmp := file + ".new"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("key-one\n")
	x, err := exchange.New(exchange.Config{Profiles: map[string]exchange.Profile{
		"apikey": {Static: &exchange.Static{SecretFile: file}},
		"basic":  {Static: &exchange.Static{SecretFile: file, Scheme: "Basic"}},
	}}, exchange.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(profile string) string {
		t.Helper()
		tok, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: "caller", Audience: "s", Profile: profile})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Authorization()
	}
	if got := get("apikey"); got != "Bearer key-one" {
		t.Errorf("Authorization = %q", got)
	}
	if got := get("basic"); got != "Basic key-one" {
		t.Errorf("Authorization = %q", got)
	}
	write("key-two-longer")
	if got := get("apikey"); got != "Bearer key-two-longer" {
		t.Errorf("Authorization after the file changed = %q", got)
	}
	write("bad value\n")
	if _, err := x.Exchange(t.Context(), exchange.Request{Profile: "apikey"}); !errors.Is(err, exchange.ErrUnavailable) || strings.Contains(err.Error(), "bad value") {
		t.Errorf("a secret with a space: %v, want ErrUnavailable without the secret", err)
	}
	if _, err := x.Exchange(t.Context(), exchange.Request{SubjectToken: "caller", Audience: "s"}); !errors.Is(err, exchange.ErrNoProfile) {
		t.Errorf("the default profile of a config without one: %v, want ErrNoProfile", err)
	}
}
