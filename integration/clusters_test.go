//go:build integration

package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/devidp/realms"
)

// This file is the package fixture of two trust domains (the delegation
// issue's environment): the dev provider serving realms domain-a
// (dev/realm-a.yaml plus user mcp of dev/realm.yaml) and domain-b
// (dev/realm-b.yaml) over HTTPS with a test CA, in this process, and two
// envtest kube-apiservers, each with a structured AuthenticationConfiguration
// (apiserver.config.k8s.io/v1) that trusts one realm:
//
//	cluster a: issuer domain-a, audience mcp-test/kubernetes-mcp (the token
//	           mcp-authz exchanges for that server), user "domain-a:<preferred_username>",
//	           groups "domain-a:<group>"; ClusterRoleBinding pod-lister to User domain-a:alice.
//	cluster b: issuer domain-b, audience kubernetes (what domain B's jwt-bearer
//	           grant issues), user "domain-b:<preferred_username>";
//	           ClusterRoleBinding pod-lister to Group domain-b:cluster-b-viewers.
//	           Realm B gains user bob.builder, linked to domain A's bob and in
//	           no group: authenticated at cluster b, refused by its RBAC.
//
// Each cluster holds namespace team-<name> with two Pods (objects only:
// envtest has no kubelet), writes an audit log, and sits behind a recording
// TLS proxy that keeps every bearer token sent to it: kubeconfigs for MCP
// servers point at the proxy, tests read what was sent (proxy) and what the
// API server authenticated (audit log, SelfSubjectReview). The fixture
// starts once per test binary (about 5 s) on first use and is stopped by
// TestMain. Tests share it: they read state since a mark (proxy) or a time
// (audit) and change nothing in the clusters.
//
// For a test:
//
//	d := domains(t)                                   // skips without KUBEBUILDER_ASSETS
//	endpoint := startKubernetesMCPPassthrough(t, d, d.a, d.b) // contexts a, b
//	t.Setenv("SSL_CERT_FILE", d.caFile)                // before starting mcp-authz
//	d.identityConfig(d.a.realm)                         // mcp-authz identity+exchange YAML
//	tok := d.login(t, realmA, "alice")                  // aud mcp-gateway, mcp-test/kubernetes-mcp
//	forA := d.exchange(t, d.a.realm, tok, audienceA)    // what cluster a accepts
//	grant, forB := d.chain(t, tok, audienceB)           // what cluster b accepts
//	mark, since := d.b.proxy.mark(), auditTime()
//	d.b.proxy.tokensSince(mark)                         // bearer tokens sent to b
//	d.b.whoami(t, forB)                                 // 201, UserInfo domain-b:alice.liddell
//	d.b.podLists(t, since)                              // []apiCall{list pods, user, JTI=, code}

const (
	realmA = "domain-a"
	realmB = "domain-b"
	// audienceA is what cluster a accepts: the aud of the token mcp-authz
	// exchanges for server mcp-test/kubernetes-mcp.
	audienceA = "mcp-test/kubernetes-mcp"
	// audienceB is what cluster b accepts: the aud of domain B's jwt-bearer
	// token for client mcp-gateway (dev/realm-b.yaml grantAudiences).
	audienceB = "kubernetes"
)

// trustDomains is the two-domain environment.
type trustDomains struct {
	idp    *realms.Server
	caFile string // PEM of the provider's test CA (SSL_CERT_FILE for processes)
	secret string // the mcp-gateway client secret (dev/gateway-secret)
	a, b   *cluster
	dir    string

	mu     sync.Mutex
	stopFn []func() // run in reverse order by stop
}

// cluster is one envtest kube-apiserver trusting one realm.
type cluster struct {
	name      string // the kubeconfig context name: "a" or "b"
	realm     *devidp.Provider
	prefix    string // username and groups prefix, "domain-a:"
	audience  string // the one audience its AuthenticationConfiguration accepts
	namespace string
	pods      []string
	env       *envtest.Environment
	admin     client.Client
	apiURL    string // the API server itself
	apiCA     []byte // PEM of the API server's serving CA
	auditLog  string
	proxy     *apiRecorder
}

var (
	domainsOnce sync.Once
	domainsVal  *trustDomains
	domainsErr  error
)

// domains returns the package's two trust domains, starting them on first
// use; the test skips without KUBEBUILDER_ASSETS and fails if they cannot
// start.
func domains(t *testing.T) *trustDomains {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: run with KUBEBUILDER_ASSETS=$(hack/envtest.sh) (make e2e sets it)")
	}
	domainsOnce.Do(func() {
		start := time.Now()
		domainsVal, domainsErr = startDomains()
		if domainsErr != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "two trust domains (provider and two kube-apiservers) up in %v\n", time.Since(start).Round(time.Millisecond))
		// go test's -timeout panics without running TestMain's stop: stop
		// the API servers shortly before, so that none is left running.
		if dl, ok := t.Deadline(); ok {
			time.AfterFunc(time.Until(dl)-10*time.Second, stopDomains)
		}
	})
	if domainsErr != nil {
		t.Fatalf("two trust domains: %v", domainsErr)
	}
	return domainsVal
}

// stopDomains stops the fixture if it was started (TestMain calls it).
func stopDomains() {
	if domainsVal != nil {
		domainsVal.stop()
	}
}

// stop stops everything started, once; later calls do nothing.
func (d *trustDomains) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.stopFn) - 1; i >= 0; i-- {
		d.stopFn[i]()
	}
	d.stopFn = nil
	_ = os.RemoveAll(d.dir)
}

// onStop adds f to what stop runs.
func (d *trustDomains) onStop(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopFn = append(d.stopFn, f)
}

// realmAConfig is dev/realm-a.yaml with user mcp of dev/realm.yaml added,
// so that use case 2 keeps its user holding every kubernetes-mcp role.
func realmAConfig() (devidp.Config, error) {
	a, err := devidp.LoadConfig(repoFile("dev/realm-a.yaml"))
	if err != nil {
		return a, err
	}
	dev, err := devidp.LoadConfig(repoFile("dev/realm.yaml"))
	if err != nil {
		return a, err
	}
	i := slices.IndexFunc(dev.Users, func(u devidp.User) bool { return u.Username == "mcp" })
	if i < 0 {
		return a, errors.New("dev/realm.yaml has no user mcp")
	}
	a.Users = append(a.Users, dev.Users[i])
	return a, nil
}

func startDomains() (*trustDomains, error) {
	ctrllog.SetLogger(logr.Discard())
	// The provider runs in this process; its OpenID library logs every
	// route at start through slog's default: keep warnings only.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	dir, err := os.MkdirTemp("", "mcp-authz-domains-")
	if err != nil {
		return nil, err
	}
	d := &trustDomains{dir: dir}
	if err := d.start(); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *trustDomains) start() error {
	secret, err := os.ReadFile(repoFile("dev/gateway-secret"))
	if err != nil {
		return err
	}
	d.secret = strings.TrimSpace(string(secret))

	a, err := realmAConfig()
	if err != nil {
		return err
	}
	b, err := devidp.LoadConfig(repoFile("dev/realm-b.yaml"))
	if err != nil {
		return err
	}
	// bob of domain A is bob.builder here, in no group: cluster b
	// authenticates him and its RBAC refuses him.
	b.Users = append(b.Users, devidp.User{Username: "bob.builder", Password: "bob.builder",
		FederatedIdentities: map[string]string{realmA: "bob"}})
	d.caFile = filepath.Join(d.dir, "devidp-ca.pem")
	s, err := realms.New(realms.Config{Realms: []devidp.Config{a, b}, TLS: &realms.TLSConfig{CAFile: d.caFile}}, "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Start(ctx) }()
	d.onStop(func() {
		cancel()
		if err := <-served; err != nil {
			fmt.Fprintln(os.Stderr, "dev provider:", err)
		}
	})
	d.idp = s

	d.a = &cluster{name: "a", realm: s.Realm(realmA), prefix: realmA + ":", audience: audienceA,
		namespace: "team-a", pods: []string{"api-a", "db-a"}}
	d.b = &cluster{name: "b", realm: s.Realm(realmB), prefix: realmB + ":", audience: audienceB,
		namespace: "team-b", pods: []string{"api-b", "db-b"}}
	// The two API servers start side by side.
	errs := make(chan error, 2)
	for _, c := range []*cluster{d.a, d.b} {
		go func() { errs <- c.start(d) }()
	}
	err = errors.Join(<-errs, <-errs)
	for _, c := range []*cluster{d.a, d.b} {
		if c.env != nil {
			d.onStop(func() { _ = c.env.Stop() })
		}
		if c.proxy != nil {
			d.onStop(c.proxy.srv.Close)
		}
	}
	if err != nil {
		return err
	}
	// The JWT authenticator loads the issuer's discovery document and keys
	// after the API server is up: wait until each cluster authenticates
	// its own realm's token.
	for _, c := range []*cluster{d.a, d.b} {
		if err := c.waitAuthenticator(d); err != nil {
			return err
		}
	}
	return nil
}

// authenticationConfig is the cluster's AuthenticationConfiguration (GA in
// 1.34) trusting its realm only.
func (c *cluster) authenticationConfig(caPEM []byte) string {
	indented := "        " + strings.ReplaceAll(strings.TrimSpace(string(caPEM)), "\n", "\n        ")
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
  - issuer:
      url: %s
      audiences: [%q]
      certificateAuthority: |
%s
    claimMappings:
      username:
        claim: preferred_username
        prefix: %q
      groups:
        claim: groups
        prefix: %q
`, c.realm.Issuer(), c.audience, indented, c.prefix, c.prefix)
}

// auditPolicy records, at Metadata level (never bodies or tokens), every
// request on pods and namespaces, every SelfSubjectReview and API discovery
// (what a client refused at authentication asks first).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: [pods, namespaces]
      - group: authentication.k8s.io
        resources: [selfsubjectreviews]
  - level: Metadata
    nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*"]
  - level: None
`

// start runs the API server with envtest's own authentication (the admin
// client certificate) plus --authentication-config, then creates the
// namespace, its pods and the RBAC.
func (c *cluster) start(d *trustDomains) error {
	dir := filepath.Join(d.dir, c.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	authn := filepath.Join(dir, "authentication.yaml")
	policy := filepath.Join(dir, "audit-policy.yaml")
	c.auditLog = filepath.Join(dir, "audit.log")
	if err := os.WriteFile(authn, []byte(c.authenticationConfig(d.idp.CAPEM())), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	c.env = &envtest.Environment{}
	args := c.env.ControlPlane.GetAPIServer().Configure()
	args.Set("authentication-config", authn)
	args.Set("audit-policy-file", policy)
	args.Set("audit-log-path", c.auditLog)
	args.Set("audit-log-mode", "blocking")
	rc, err := c.env.Start()
	if err != nil {
		c.env = nil
		return fmt.Errorf("cluster %s: envtest: %w", c.name, err)
	}
	c.apiURL = strings.TrimSuffix(rc.Host, "/")
	c.apiCA = rc.CAData
	if c.admin, err = client.New(rc, client.Options{}); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	if c.proxy, err = startAPIRecorder(c.apiURL, c.apiCA); err != nil {
		return fmt.Errorf("cluster %s: %w", c.name, err)
	}
	return c.populate()
}

// populate creates the namespace, its pods, ClusterRole pod-lister and its
// binding: to User domain-a:alice on cluster a, to Group
// domain-b:cluster-b-viewers on cluster b (both mappings of the
// AuthenticationConfiguration are exercised).
func (c *cluster) populate() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: c.prefix + "alice"}
	if c.name == "b" {
		subject = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: c.prefix + "cluster-b-viewers"}
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.namespace}},
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-lister"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-lister"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "pod-lister"},
			Subjects:   []rbacv1.Subject{subject},
		},
	}
	for _, name := range c.pods {
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
		})
	}
	for _, o := range objs {
		if err := c.admin.Create(ctx, o); err != nil {
			return fmt.Errorf("cluster %s: create %T %s: %w", c.name, o, o.GetName(), err)
		}
	}
	return nil
}

// waitAuthenticator waits until the cluster authenticates a token of its
// realm (up to 60 s).
func (c *cluster) waitAuthenticator(d *trustDomains) error {
	var last string
	var tokErr error
	accepted := until(time.Now().Add(60*time.Second), func() bool {
		tok, err := d.tokenFor(context.Background(), c)
		if err != nil {
			tokErr = err
			return true
		}
		code, user, err := c.review(context.Background(), tok)
		last = fmt.Sprintf("%d %v", code, err)
		return err == nil && code == http.StatusCreated && user.Username != ""
	})
	switch {
	case tokErr != nil:
		return fmt.Errorf("cluster %s: token: %w", c.name, tokErr)
	case !accepted:
		return fmt.Errorf("cluster %s: the JWT authenticator never accepted its realm's token: %s", c.name, last)
	}
	return nil
}

// tokenFor is a token cluster c accepts for alice (the readiness probe):
// her domain-A login exchanged for cluster a's audience, or chained to
// domain B for cluster b's.
func (d *trustDomains) tokenFor(ctx context.Context, c *cluster) (string, error) {
	login, err := d.password(ctx, realmA, "alice")
	if err != nil {
		return "", err
	}
	if c == d.a {
		return d.exchangeCtx(ctx, d.a.realm, login, audienceA)
	}
	_, tok, err := d.chainCtx(ctx, login, audienceB)
	return tok, err
}

// review sends a SelfSubjectReview with token straight to the API server
// (not through the proxy) and returns the HTTP status and, on 201, whom the
// API server authenticated.
func (c *cluster) review(ctx context.Context, token string) (int, authenticationv1.UserInfo, error) {
	var user authenticationv1.UserInfo
	body := `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL+"/apis/authentication.k8s.io/v1/selfsubjectreviews", strings.NewReader(body))
	if err != nil {
		return 0, user, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := caClient(c.apiCA).Do(req)
	if err != nil {
		return 0, user, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, user, err
	}
	var r authenticationv1.SelfSubjectReview
	if err := json.Unmarshal(b, &r); err != nil {
		return resp.StatusCode, user, fmt.Errorf("selfsubjectreview: %w", err)
	}
	return resp.StatusCode, r.Status.UserInfo, nil
}

// whoami is review for a test: the user the API server authenticated from
// token, or the HTTP status it refused it with (401) as code.
func (c *cluster) whoami(t *testing.T, token string) (int, authenticationv1.UserInfo) {
	t.Helper()
	code, user, err := c.review(t.Context(), token)
	if err != nil {
		t.Fatalf("cluster %s: selfsubjectreview: %v", c.name, err)
	}
	return code, user
}

// auditEvent is the part of an audit.k8s.io/v1 Event the tests read.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string              `json:"username"`
		Groups   []string            `json:"groups"`
		Extra    map[string][]string `json:"extra"`
	} `json:"user"`
	ObjectRef *struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// audit returns the cluster's audit events of requests received at or after
// since, one per request (its last stage: ResponseComplete, or
// ResponseStarted for a request refused by authentication), in order.
func (c *cluster) audit(since time.Time) ([]auditEvent, error) {
	f, err := os.Open(c.auditLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auditEvent
	at := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", c.auditLog, err)
		}
		if e.RequestReceivedTimestamp.Before(since) || e.ResponseStatus == nil {
			continue
		}
		if i, ok := at[e.AuditID]; ok {
			out[i] = e
			continue
		}
		at[e.AuditID] = len(out)
		out = append(out, e)
	}
	return out, sc.Err()
}

// apiCall is one audited request: what (verb and resource, or for a
// non-resource request the HTTP verb and path), whom the API server
// authenticated ("" when it did not), by which credential ("JTI=<jti>" for
// a JWT: the user's extra authentication.kubernetes.io/credential-id), and
// its status.
type apiCall struct {
	Verb, Resource   string
	User, Credential string
	Code             int
}

// requests are the cluster's audited requests received at or after since,
// except envtest's own (user admin or system:apiserver).
func (c *cluster) requests(t *testing.T, since time.Time) []apiCall {
	t.Helper()
	events, err := c.audit(since)
	if err != nil {
		t.Fatalf("cluster %s: %v", c.name, err)
	}
	var out []apiCall
	for _, e := range events {
		if e.User.Username == "admin" || e.User.Username == "system:apiserver" {
			continue
		}
		call := apiCall{Verb: e.Verb, User: e.User.Username, Code: e.ResponseStatus.Code}
		if e.ObjectRef != nil {
			call.Resource = e.ObjectRef.Resource
		} else if u, err := url.Parse(e.RequestURI); err == nil {
			call.Resource = u.Path
		}
		if ids := e.User.Extra["authentication.kubernetes.io/credential-id"]; len(ids) > 0 {
			call.Credential = ids[0]
		}
		out = append(out, call)
	}
	return out
}

// awaitPodLists waits up to 10 s for the cluster to audit a pod list at
// or after since and returns the pod lists audited by then.
func (c *cluster) awaitPodLists(t *testing.T, since time.Time) []apiCall {
	t.Helper()
	var got []apiCall
	waitFor(t, "cluster "+c.name+"'s audit of a pod list", 10*time.Second, func() bool {
		got = c.podLists(t, since)
		return len(got) > 0
	})
	return got
}

// podLists are the cluster's audited pod lists received at or after since.
func (c *cluster) podLists(t *testing.T, since time.Time) []apiCall {
	t.Helper()
	var out []apiCall
	for _, call := range c.requests(t, since) {
		if call.Verb == "list" && call.Resource == "pods" {
			out = append(out, call)
		}
	}
	return out
}

// credentialID is how the audit log names a JWT: "JTI=" + its jti claim.
func credentialID(t *testing.T, token string) string {
	t.Helper()
	jti, _ := jwtPayload(t, token)["jti"].(string)
	if jti == "" {
		t.Fatal("token without jti")
	}
	return "JTI=" + jti
}

// auditTime is a time to pass as since before a request: the audit log
// records microseconds.
func auditTime() time.Time { return time.Now().Truncate(time.Microsecond) }

// password is a password login with the public client mcp-cli at realm.
func (d *trustDomains) password(ctx context.Context, realm, user string) (string, error) {
	password := user
	body, err := d.token(ctx, d.idp.Realm(realm), url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"},
		"username": {user}, "password": {password}}, false)
	if err != nil {
		return "", err
	}
	return body.AccessToken, nil
}

// exchangeCtx is an RFC 8693 exchange at realm p by the mcp-gateway client
// of subject (an access token of p) for an access token for audience.
func (d *trustDomains) exchangeCtx(ctx context.Context, p *devidp.Provider, subject, audience string) (string, error) {
	body, err := d.token(ctx, p, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"audience": {audience}}, true)
	if err != nil {
		return "", err
	}
	return body.AccessToken, nil
}

// tokenResponse is an RFC 6749 token response, or its error.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	IssuedTokenType  string `json:"issued_token_type"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// token posts form to p's token endpoint, as mcp-gateway (basic auth) when
// gateway is set, and returns the answer; a refusal is an error naming the
// RFC 6749 error code.
func (d *trustDomains) token(ctx context.Context, p *devidp.Provider, form url.Values, gateway bool) (tokenResponse, error) {
	var body tokenResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return body, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if gateway {
		req.SetBasicAuth("mcp-gateway", d.secret)
	}
	resp, err := d.idp.Client().Do(req)
	if err != nil {
		return body, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return body, fmt.Errorf("token endpoint %s: status %d: %w", p.TokenURL(), resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return body, fmt.Errorf("token endpoint %s: %d %s: %s", p.TokenURL(), resp.StatusCode, body.Error, body.ErrorDescription)
	}
	return body, nil
}

// login is a password login of user at realm (the password is the username
// in the dev realms).
func (d *trustDomains) login(t *testing.T, realm, user string) string {
	t.Helper()
	tok, err := d.password(t.Context(), realm, user)
	if err != nil {
		t.Fatalf("login %s at %s: %v", user, realm, err)
	}
	return tok
}

// exchange is exchangeCtx for a test.
func (d *trustDomains) exchange(t *testing.T, p *devidp.Provider, subject, audience string) string {
	t.Helper()
	tok, err := d.exchangeCtx(t.Context(), p, subject, audience)
	if err != nil {
		t.Fatalf("exchange at %s for %s: %v", p.Issuer(), audience, err)
	}
	return tok
}

// chainCtx is identity chaining across domains
// (draft-ietf-oauth-identity-chaining), both legs as the mcp-gateway client:
// subject, an access token of domain A whose aud names mcp-gateway, is
// exchanged at A (RFC 8693, requested_token_type jwt, audience = B's issuer)
// for a JWT authorization grant, which B takes with the RFC 7523 jwt-bearer
// grant for a token of B for audience (cluster b's "kubernetes"). It returns
// the grant and B's access token.
func (d *trustDomains) chainCtx(ctx context.Context, subject, audience string) (grant, token string, err error) {
	g, err := d.token(ctx, d.a.realm, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "audience": {d.b.realm.Issuer()}}, true)
	if err != nil {
		return "", "", fmt.Errorf("grant at %s: %w", realmA, err)
	}
	b, err := d.token(ctx, d.b.realm, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion": {g.AccessToken}, "audience": {audience}}, true)
	if err != nil {
		return "", "", fmt.Errorf("jwt-bearer at %s: %w", realmB, err)
	}
	return g.AccessToken, b.AccessToken, nil
}

// chain is chainCtx for a test.
func (d *trustDomains) chain(t *testing.T, subject, audience string) (grant, token string) {
	t.Helper()
	grant, token, err := d.chainCtx(t.Context(), subject, audience)
	if err != nil {
		t.Fatalf("identity chaining: %v", err)
	}
	return grant, token
}

// identityConfig is mcp-authz's identity and exchange sections for realm p:
// callers' tokens of p (aud mcp-gateway), exchanged at p by the gateway
// client. Processes using it need SSL_CERT_FILE=d.caFile.
func (d *trustDomains) identityConfig(p *devidp.Provider) string {
	return identityYAML(p.Issuer(), p.TokenURL())
}

// kubeconfig writes a kubeconfig with one context per cluster (named after
// it, the first the current one), each pointing at the cluster's recording
// proxy with its CA, and no credentials: an MCP server in passthrough mode
// sends each call's bearer token.
func (d *trustDomains) kubeconfig(dir string, clusters ...*cluster) (string, error) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\nclusters:\n")
	for _, c := range clusters {
		fmt.Fprintf(&b, "  - name: %s\n    cluster:\n      server: %s\n      certificate-authority-data: %s\n",
			c.name, c.proxy.url, c.proxy.caData())
	}
	b.WriteString("users:\n  - name: nobody\n    user: {}\ncontexts:\n")
	for _, c := range clusters {
		fmt.Fprintf(&b, "  - name: %s\n    context: {cluster: %s, user: nobody, namespace: %s}\n", c.name, c.name, c.namespace)
	}
	fmt.Fprintf(&b, "current-context: %s\n", clusters[0].name)
	p := filepath.Join(dir, "kubeconfig")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

// apiRecorder is a TLS reverse proxy in front of an API server that
// records every request (in memory, for the test to read the bearer tokens
// it was sent).
type apiRecorder struct {
	recording
	url string
	srv *httptest.Server
}

func startAPIRecorder(target string, caPEM []byte) (*apiRecorder, error) {
	to, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(to) },
		Transport:     caClient(caPEM).Transport,
		FlushInterval: -1,
	}
	r := &apiRecorder{}
	r.srv = httptest.NewTLSServer(r.record(rp))
	r.url = r.srv.URL
	return r, nil
}

// caData is the proxy's serving certificate, base64 PEM for a kubeconfig.
func (r *apiRecorder) caData() string {
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}))
}

// mark is the number of requests so far, for since.
func (r *apiRecorder) mark() int { return len(r.requests()) }

// since returns the requests after mark.
func (r *apiRecorder) since(mark int) []request { return r.requests()[mark:] }

// tokensSince are the distinct bearer tokens sent after mark.
func (r *apiRecorder) tokensSince(mark int) []string {
	var out []string
	for _, s := range r.since(mark) {
		if tok, _ := strings.CutPrefix(s.authorization(), "Bearer "); tok != "" && !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out
}

// caClient is an HTTP client trusting only caPEM.
func caClient(caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		Timeout:   30 * time.Second,
	}
}
