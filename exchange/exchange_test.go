package exchange

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/identity"
)

// subject is a caller token of s valid for an hour.
func subject(s *service) (string, time.Time) {
	c := s.claims("mcp-gateway")
	exp := s.clk.Now().Add(time.Hour)
	c["exp"] = exp.Unix()
	return s.mint(s.key, c), exp
}

func request(s *service) Request {
	raw, exp := subject(s)
	return Request{SubjectToken: raw, SubjectExpiry: exp, SubjectAudience: []string{"mcp-gateway"}, Audience: server}
}

func TestExchange(t *testing.T) {
	for _, style := range []string{"", "basic", "post"} {
		t.Run("authStyle "+style, func(t *testing.T) {
			s := newService(t, newClock(start))
			x := newClient(t, s, func(c *Config) { c.AuthStyle = style; c.Scopes = []string{"openid", "tools"} })
			r := request(s)
			r.Resource = "https://mcp.example/kube"
			tok, err := x.Exchange(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Exchanged || tok.AccessToken == r.SubjectToken || tok.Claims["aud"] != server {
				t.Errorf("Exchange() = %+v", tok)
			}
			if want := s.clk.Now().Add(5 * time.Minute); !tok.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v", tok.Expiry, want)
			}
			form := s.lastForm()
			want := map[string][]string{
				"grant_type":           {grantType},
				"subject_token":        {r.SubjectToken},
				"subject_token_type":   {TokenTypeAccessToken},
				"requested_token_type": {TokenTypeAccessToken},
				"audience":             {server},
				"scope":                {"openid tools"},
				"resource":             {"https://mcp.example/kube"},
			}
			if style == "post" {
				want["client_id"] = []string{clientID}
				want["client_secret"] = []string{secret}
			}
			if diff := cmp.Diff(want, map[string][]string(form)); diff != "" {
				t.Errorf("form mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExchangeFailures(t *testing.T) {
	answer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	var svc *service
	issue := func(mod func(claims map[string]any), rogue bool, extra map[string]any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c := svc.claims(r.PostForm.Get("audience"))
			if mod != nil {
				mod(c)
			}
			key := svc.key
			if rogue {
				key = svc.rogue
			}
			body := map[string]any{"access_token": svc.mint(key, c), "issued_token_type": TokenTypeAccessToken, "token_type": "Bearer", "expires_in": 300}
			for k, v := range extra {
				body[k] = v
			}
			writeJSON(w, http.StatusOK, body)
		}
	}
	tests := []struct {
		name   string
		answer http.HandlerFunc
		want   error          // a sentinel, or nil for a *RetrieveError
		refuse *RetrieveError // the refusal expected
	}{
		{"400 invalid_grant", answer(400, `{"error":"invalid_grant","error_description":"subject token expired"}`), nil,
			&RetrieveError{StatusCode: 400, ErrorCode: "invalid_grant", ErrorDescription: "subject token expired"}},
		{"400 invalid_target", answer(400, `{"error":"invalid_target"}`), nil, &RetrieveError{StatusCode: 400, ErrorCode: "invalid_target"}},
		{"403 unauthorized_client", answer(403, `{"error":"unauthorized_client"}`), nil, &RetrieveError{StatusCode: 403, ErrorCode: "unauthorized_client"}},
		{"200 with an error field", answer(200, `{"error":"access_denied"}`), nil, &RetrieveError{StatusCode: 200, ErrorCode: "access_denied"}},
		{"error code outside RFC 6749", answer(400, `{"error":"bad\"code\u0007"}`), nil, &RetrieveError{StatusCode: 400}},
		{"description echoing the token", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "bad " + r.PostForm.Get("subject_token")})
		}, nil, &RetrieveError{StatusCode: 400, ErrorCode: "invalid_grant"}},
		{"200 without access_token", answer(200, `{"token_type":"Bearer","expires_in":300}`), ErrUnavailable, nil},
		{"non-JSON", answer(200, `<html>hello</html>`), ErrUnavailable, nil},
		{"404 page", answer(404, `not found`), ErrUnavailable, nil},
		{"400 without error", answer(400, `{}`), ErrUnavailable, nil},
		{"500", answer(500, `{"error":"server_error"}`), ErrUnavailable, nil},
		{"503", answer(503, ``), ErrUnavailable, nil},
		{"429", answer(429, `{"error":"slow_down"}`), ErrUnavailable, nil},
		{"over 1 MiB", answer(200, `{"access_token":"`+strings.Repeat("a", 1<<20)+`"}`), ErrUnavailable, nil},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, ErrUnavailable, nil},
		{"token_type DPoP", issue(nil, false, map[string]any{"token_type": "DPoP"}), ErrUnavailable, nil},
		{"issued_token_type refresh_token", issue(nil, false, map[string]any{"issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}), ErrUnavailable, nil},
		{"expires_in negative", issue(nil, false, map[string]any{"expires_in": -1}), ErrUnavailable, nil},
		{"audience not the server", issue(func(c map[string]any) { c["aud"] = "mcp-gateway" }, false, nil), ErrInvalidToken, nil},
		{"audience the server and another", issue(func(c map[string]any) { c["aud"] = []string{server, "other"} }, false, nil), ErrInvalidToken, nil},
		{"signed by an unknown key", issue(nil, true, nil), ErrInvalidToken, nil},
		{"already expired", issue(func(c map[string]any) { c["exp"] = svc.clk.Now().Add(-time.Hour).Unix() }, false, nil), ErrInvalidToken, nil},
		{"another issuer", issue(func(c map[string]any) { c["iss"] = "https://evil.example" }, false, nil), ErrInvalidToken, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc = newService(t, newClock(start))
			svc.setAnswer(tt.answer)
			x := newClient(t, svc, func(c *Config) { c.Timeout = 300 * time.Millisecond })
			r := request(svc)
			tok, err := x.Exchange(t.Context(), r)
			if err == nil {
				t.Fatalf("Exchange() = %+v, want an error", tok)
			}
			var re *RetrieveError
			if tt.refuse != nil {
				if !errors.As(err, &re) {
					t.Fatalf("Exchange() error = %v, want a RetrieveError", err)
				}
				if diff := cmp.Diff(tt.refuse, re); diff != "" {
					t.Errorf("RetrieveError mismatch (-want +got):\n%s", diff)
				}
			} else if !errors.Is(err, tt.want) || errors.As(err, &re) {
				t.Fatalf("Exchange() error = %v, want %v", err, tt.want)
			}
			for _, secretText := range []string{r.SubjectToken, secret, "s3cr"} {
				if strings.Contains(err.Error(), secretText) {
					t.Errorf("error %q holds a secret", err)
				}
			}
			// Failures are not cached: the next call asks again.
			_, _ = x.Exchange(t.Context(), r)
			if got := svc.calls.Load(); got != 2 {
				t.Errorf("token endpoint calls after two failing exchanges = %d, want 2", got)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			elsewhere := newService(t, newClock(start))
			s := newService(t, newClock(start))
			s.setAnswer(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+"/token", status)
			})
			x := newClient(t, s, func(c *Config) { c.AuthStyle = "post" })
			if _, err := x.Exchange(t.Context(), request(s)); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Exchange() error = %v, want ErrUnavailable", err)
			}
			if got := elsewhere.calls.Load(); got != 0 {
				t.Errorf("the redirect target got %d calls, want 0", got)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	s := newService(t, newClock(start))
	x := newClient(t, s, nil)
	r := request(s)
	s.Close()
	if _, err := x.Exchange(t.Context(), r); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Exchange() error = %v, want ErrUnavailable", err)
	}
}

func TestConcurrentMissesMakeOneCall(t *testing.T) {
	s := newService(t, newClock(start))
	x := newClient(t, s, nil)
	r := request(s)
	release := make(chan struct{})
	var wg sync.WaitGroup
	toks := make([]*Token, 1000)
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
			t.Fatalf("Exchange() #%d: %v", i, errs[i])
		}
		if toks[i].AccessToken != toks[0].AccessToken {
			t.Fatalf("Exchange() #%d returned another token", i)
		}
	}
	if got := s.calls.Load(); got != 1 {
		t.Errorf("token endpoint calls for 1,000 concurrent exchanges = %d, want 1", got)
	}
}

func TestCallerGivingUpDoesNotFailOthers(t *testing.T) {
	s := newService(t, newClock(start))
	x := newClient(t, s, nil)
	entered, proceed := make(chan struct{}), make(chan struct{})
	s.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-proceed
		s.setAnswer(nil)
		s.token(w, r)
	})
	r := request(s)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := x.Exchange(ctx, r)
		first <- err
	}()
	<-entered
	second := make(chan error, 1)
	go func() {
		_, err := x.Exchange(t.Context(), r)
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled caller: error = %v, want ErrUnavailable and context.Canceled", err)
	}
	close(proceed)
	if err := <-second; err != nil {
		t.Errorf("other caller: %v", err)
	}
	// s.calls counts the blocked call and the honest one it forwarded to.
	if got := s.calls.Load(); got != 2 {
		t.Errorf("token endpoint calls = %d, want 2 (one request)", got)
	}
}

func TestCacheLifetime(t *testing.T) {
	tests := []struct {
		name       string
		subjectExp time.Duration // from now; 0: unknown
		life       time.Duration // of exchanged tokens
		servedFor  time.Duration // a call at this age is served from the cache, one later is not
	}{
		{"subject expires first", time.Minute, 5 * time.Minute, time.Minute},
		{"exchanged expires first, minus the skew", time.Hour, 5 * time.Minute, 5*time.Minute - DefaultExpirySkew},
		{"subject expiry unknown: not cached", 0, 5 * time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(start)
			s := newService(t, clk)
			s.life = tt.life
			x := newClient(t, s, nil)
			r := request(s)
			r.SubjectExpiry = time.Time{}
			if tt.subjectExp > 0 {
				r.SubjectExpiry = clk.Now().Add(tt.subjectExp)
			}
			if _, err := x.Exchange(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			want := int32(1)
			if tt.servedFor > 0 {
				clk.Advance(tt.servedFor - time.Nanosecond)
				if _, err := x.Exchange(t.Context(), r); err != nil {
					t.Fatal(err)
				}
				if got := s.calls.Load(); got != 1 {
					t.Fatalf("calls within the cache life = %d, want 1", got)
				}
				clk.Advance(time.Nanosecond)
			}
			if _, err := x.Exchange(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			if got := s.calls.Load(); got != want+1 {
				t.Errorf("calls once the cache life ended = %d, want %d", got, want+1)
			}
		})
	}
}

func TestCacheNeverPastSubjectExpiry(t *testing.T) {
	clk := newClock(start)
	s := newService(t, clk)
	s.life = time.Hour
	x := newClient(t, s, nil)
	r := request(s)
	r.SubjectExpiry = clk.Now().Add(2 * time.Minute)
	first, err := x.Exchange(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		clk.Advance(time.Minute)
		tok, err := x.Exchange(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if !clk.Now().Before(r.SubjectExpiry) && tok.AccessToken == first.AccessToken {
			t.Fatalf("at %v, past the subject expiry %v, the cached token was served", clk.Now(), r.SubjectExpiry)
		}
	}
}

func TestCacheKey(t *testing.T) {
	s := newService(t, newClock(start))
	x := newClient(t, s, nil)
	base := request(s)
	other, _ := subject(s)
	tests := []struct {
		name string
		mod  func(*Request)
		new  bool // makes a new call
	}{
		{"same", func(r *Request) {}, false},
		{"other audience", func(r *Request) { r.Audience = "server-b" }, true},
		{"other scopes", func(r *Request) { r.Scopes = []string{"a"} }, true},
		{"scopes split differently", func(r *Request) { r.Scopes = []string{"a b"} }, false}, // the same scope parameter
		{"other resource", func(r *Request) { r.Resource = "https://mcp.example" }, true},
		{"other subject token", func(r *Request) { r.SubjectToken = other }, true},
		{"same again", func(r *Request) {}, false},
	}
	if _, err := x.Exchange(t.Context(), base); err != nil {
		t.Fatal(err)
	}
	// Scopes ["a", "b"] cached: ["a b"] is the same scope parameter.
	if _, err := x.Exchange(t.Context(), Request{SubjectToken: base.SubjectToken, SubjectExpiry: base.SubjectExpiry, Audience: server, Scopes: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.mod(&r)
			before := s.calls.Load()
			if _, err := x.Exchange(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			if got := s.calls.Load() - before; got != map[bool]int32{false: 0, true: 1}[tt.new] {
				t.Errorf("calls = %d, want a new call: %v", got, tt.new)
			}
		})
	}
}

func TestSkipWhenAudienceMatches(t *testing.T) {
	s := newService(t, newClock(start))
	x := newClient(t, s, func(c *Config) { c.SkipWhenAudienceMatches = true })
	r := request(s)
	tests := []struct {
		name     string
		aud      []string
		exchange bool
	}{
		{"audience is the server", []string{server}, false},
		{"audience holds the server and another", []string{server, "mcp-gateway"}, true},
		{"another audience", []string{"mcp-gateway"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := r
			r.SubjectAudience = tt.aud
			tok, err := x.Exchange(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Exchanged != tt.exchange || (tok.AccessToken == r.SubjectToken) == tt.exchange {
				t.Errorf("Exchange() = {Exchanged: %v, same token: %v}, want exchanged %v", tok.Exchanged, tok.AccessToken == r.SubjectToken, tt.exchange)
			}
		})
	}
}

func TestCacheBounded(t *testing.T) {
	s := newService(t, newClock(start))
	x := newClient(t, s, func(c *Config) { c.CacheSize = 2 })
	r := request(s)
	for _, aud := range []string{"a", "b", "c", "d"} {
		r.Audience = aud
		if _, err := x.Exchange(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if got := x.cache.Len(); got != 2 {
		t.Errorf("cache entries = %d, want 2", got)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, empty := file("good", "s3cret\r\n"), file("empty", "\n")
	t.Setenv("MCP_AUTHZ_TEST_SECRET", "s3cret")
	ok := Config{TokenURL: "http://127.0.0.1:1/token", ClientID: "gw", ClientSecretFile: good}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"file", func(c *Config) {}, true},
		{"env", func(c *Config) { c.ClientSecretFile, c.ClientSecretEnv = "", "MCP_AUTHZ_TEST_SECRET" }, true},
		{"no secret", func(c *Config) { c.ClientSecretFile = "" }, false},
		{"both", func(c *Config) { c.ClientSecretEnv = "MCP_AUTHZ_TEST_SECRET" }, false},
		{"empty file", func(c *Config) { c.ClientSecretFile = empty }, false},
		{"missing file", func(c *Config) { c.ClientSecretFile = filepath.Join(dir, "nope") }, false},
		{"unset env", func(c *Config) { c.ClientSecretFile, c.ClientSecretEnv = "", "MCP_AUTHZ_TEST_UNSET" }, false},
		{"no clientID", func(c *Config) { c.ClientID = "" }, false},
		{"relative tokenURL", func(c *Config) { c.TokenURL = "/token" }, false},
		{"unknown authStyle", func(c *Config) { c.AuthStyle = "jwt" }, false},
		{"missing caFile", func(c *Config) { c.CAFile = filepath.Join(dir, "nope") }, false},
		{"caFile without PEM", func(c *Config) { c.CAFile = good }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			x, err := New(c, Deps{Verifier: okVerifier{}})
			if (err == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q holds the secret", err)
			}
			if err == nil && defaultSecret(x) != "s3cret" {
				t.Errorf("secret read as %q", defaultSecret(x))
			}
		})
	}
	if _, err := New(ok, Deps{}); err == nil {
		t.Error("New() without a TokenVerifier succeeded")
	}
}

// okVerifier satisfies TokenVerifier where no token is verified.
type okVerifier struct{}

func (okVerifier) VerifyAudience(context.Context, string, string) (*identity.Identity, error) {
	return nil, errors.New("not used")
}

func TestPack(t *testing.T) {
	s := newService(t, newClock(start))
	jwt := s.mint(s.key, s.claims(server))
	tests := []struct {
		name    string
		token   string
		smaller bool
	}{
		{"jwt", jwt, true},
		{"opaque", "2YotnFZFEjr1zCsicMWpAA", false},
		{"four parts", "e30.e30.e30.e30", false},
		{"empty parts", "..", false},
		{"non-canonical base64", "e31.e30.c2ln", false},
		{"not base64", "e30.e30.c2%n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := pack(tt.token)
			if got := unpack(b); got != tt.token {
				t.Errorf("unpack(pack(%q)) = %q", tt.token, got)
			}
			if smaller := len(b) < len(tt.token); smaller != tt.smaller {
				t.Errorf("packed %d bytes into %d", len(tt.token), len(b))
			}
		})
	}
}

// defaultSecret is the client secret of x's default profile.
func defaultSecret(x *Client) string {
	return x.profiles[DefaultProfile].steps[0].cred.(*secretCredential).secret
}
