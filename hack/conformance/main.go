// Command conformance runs the official MCP conformance suite (npm
// @modelcontextprotocol/conformance) against go-sdk's conformance
// everything-server twice, directly and through mcp-authz (the front, authz
// and the router in one process, with identity and token exchange against the
// dev provider), compares the two runs check by check, writes both tables to
// docs/conformance.md and the README, and fails on any check that passes
// directly and not through mcp-authz unless hack/conformance/known-gaps.txt
// lists it, and on any listed gap that has closed. make conformance runs it
// with the pinned suites, Node 22 and the binaries in bin/.
//
// Every process it starts listens on 127.0.0.1 only and is stopped by its
// PID before it returns, also on Ctrl-C.
package main

import (
	"context"
	"debug/buildinfo"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// stateless says how the everything-server runs for each spec version the
// harness knows. 2026-07-28 removed sessions (SEP-2567): its suite talks to
// a stateless server. The 2025-11-25 scenarios need sessions (the GET stream,
// resources/subscribe, server-to-client requests), so the server keeps them.
var stateless = map[string]bool{
	"2025-11-25": false,
	"2026-07-28": true,
}

// The suite's caller: a user of dev/realm.yaml, in group mcp-users, which
// the harness's policy allows.
const (
	user     = "alice"
	password = "alice"
	realm    = "mcp"
)

//go:embed mcp-authz.yaml.tmpl
var configTemplate string

// suiteFlag is -suite SPEC=DIR, repeatable, kept in order.
type suiteFlag []suiteArg

type suiteArg struct{ spec, dir string }

func (s *suiteFlag) String() string { return fmt.Sprint(*s) }

func (s *suiteFlag) Set(v string) error {
	spec, dir, ok := strings.Cut(v, "=")
	if !ok || spec == "" || dir == "" {
		return errors.New("want SPEC=DIR")
	}
	if _, known := stateless[spec]; !known {
		return fmt.Errorf("spec version %s: the harness knows only 2025-11-25 and 2026-07-28", spec)
	}
	*s = append(*s, suiteArg{spec: spec, dir: dir})
	return nil
}

type options struct {
	node, server, mcpAuthz, devidp, realmFile, secret string
	knownGaps, out, readme                            string
	suites                                            suiteFlag
	timeout                                           time.Duration
	keep                                              bool
}

func main() {
	var o options
	flag.StringVar(&o.node, "node", "node", "Node 22 `binary`")
	flag.Var(&o.suites, "suite", "`SPEC=DIR`: run the conformance package installed in DIR (its node_modules/@modelcontextprotocol/conformance) for spec version SPEC; repeatable")
	flag.StringVar(&o.server, "server", "bin/everything-server", "go-sdk's conformance everything-server `binary`")
	flag.StringVar(&o.mcpAuthz, "mcp-authz", "bin/mcp-authz", "mcp-authz `binary`")
	flag.StringVar(&o.devidp, "devidp", "bin/devidp", "dev provider `binary`")
	flag.StringVar(&o.realmFile, "realm", "dev/realm.yaml", "realm `file` of the dev provider")
	flag.StringVar(&o.secret, "secret", "dev/gateway-secret", "client secret `file` of mcp-gateway in that realm")
	flag.StringVar(&o.knownGaps, "known-gaps", "hack/conformance/known-gaps.txt", "`file` of accepted gaps")
	flag.StringVar(&o.out, "out", "docs/conformance.md", "Markdown report `file`")
	flag.StringVar(&o.readme, "readme", "README.md", "README `file` whose conformance block gets both tables; empty: none")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on each run of the suite")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (logs, configs, the suite's results) also on success")
	flag.Parse()
	if len(o.suites) == 0 {
		fmt.Fprintln(os.Stderr, "conformance: no -suite given")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	f, err := os.Open(o.knownGaps)
	if err != nil {
		return err
	}
	known, err := parseKnownGaps(f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", o.knownGaps, err)
	}
	nodeVersion, err := checkNode(ctx, o.node)
	if err != nil {
		return err
	}
	secret, err := filepath.Abs(o.secret)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "mcp-authz-conformance-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || o.keep {
			fmt.Fprintln(os.Stderr, "conformance: logs, configs and results are in", work)
			return
		}
		_ = os.RemoveAll(work)
	}()

	idpAddr, err := freeAddr(ctx)
	if err != nil {
		return err
	}
	idp, err := start(ctx, work, "devidp", o.devidp, "--config", o.realmFile, "--listen", idpAddr)
	if err != nil {
		return err
	}
	defer idp.stop()
	issuer := "http://" + idpAddr + "/realms/" + realm
	if err := waitHTTP(ctx, issuer+"/.well-known/openid-configuration", idp); err != nil {
		return err
	}
	token, err := login(ctx, issuer)
	if err != nil {
		return err
	}

	var outs []*outcome
	for _, s := range o.suites {
		out, err := runSuite(ctx, o, s, work, issuer, secret, token)
		if err != nil {
			return fmt.Errorf("%s: %w", s.spec, err)
		}
		fmt.Print(out.text())
		outs = append(outs, out)
	}

	if err := os.WriteFile(o.out, markdown(outs, known, fmt.Sprintf("go-sdk %s conformance/everything-server, Node %s", sdkVersion(o.server), nodeVersion)), 0o644); err != nil {
		return err
	}
	if o.readme != "" {
		if err := updateReadme(o.readme, outs); err != nil {
			return err
		}
	}

	var measured []gap
	var specs []string
	for _, out := range outs {
		measured = append(measured, out.Gaps...)
		specs = append(specs, out.Spec)
	}
	fresh, closed := verdict(measured, known, specs)
	fmt.Printf("\n%d gaps, %d listed in %s; report: %s\n", len(measured), len(measured)-len(fresh), o.knownGaps, o.out)
	if len(fresh) == 0 && len(closed) == 0 {
		return nil
	}
	var msg strings.Builder
	if len(fresh) > 0 {
		fmt.Fprintf(&msg, "\nnew gaps (pass directly, not through mcp-authz), not in %s:\n", o.knownGaps)
		for _, g := range fresh {
			fmt.Fprintf(&msg, "  %s\n", g)
		}
	}
	if len(closed) > 0 {
		fmt.Fprintf(&msg, "\nlisted in %s but no longer a gap (remove them):\n", o.knownGaps)
		for _, g := range closed {
			fmt.Fprintf(&msg, "  %s: %s\n", g, closedWhy(outs, g))
		}
	}
	fmt.Print(msg.String())
	return fmt.Errorf("%d new gaps, %d closed gaps still listed", len(fresh), len(closed))
}

// closedWhy says why a listed gap is not one any more.
func closedWhy(outs []*outcome, g gap) string {
	for _, o := range outs {
		if o.Spec != g.Spec {
			continue
		}
		d, ok := o.Direct[g.Scenario].check(g.Check)
		switch {
		case !ok:
			return "the suite no longer has this check"
		case !d.passed():
			return "it no longer passes directly (" + d.Status + ")"
		}
		t, _ := o.Through[g.Scenario].check(g.Check)
		return "it now passes through mcp-authz (" + t.Status + ")"
	}
	return "not measured"
}

// runSuite measures one suite: the server, the suite directly, mcp-authz in
// front of the same server, the suite through it.
func runSuite(ctx context.Context, o options, s suiteArg, work, issuer, secret, token string) (*outcome, error) {
	pkg := filepath.Join(s.dir, "node_modules", "@modelcontextprotocol", "conformance")
	version, err := packageVersion(pkg)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, s.spec)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := &outcome{Spec: s.spec, Suite: version, Stateless: stateless[s.spec]}

	srvAddr, err := freeAddr(ctx)
	if err != nil {
		return nil, err
	}
	srv, err := start(ctx, dir, "everything-server", o.server,
		"-http="+srvAddr, "-stateless="+strconv.FormatBool(out.Stateless))
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if err := waitTCP(ctx, srvAddr, srv); err != nil {
		return nil, err
	}
	serverURL := "http://" + srvAddr + "/mcp"
	if out.Direct, err = suite(ctx, o, pkg, s.spec, serverURL, filepath.Join(dir, "direct")); err != nil {
		return nil, fmt.Errorf("directly: %w", err)
	}

	ports := map[string]string{}
	for _, k := range []string{"Front", "Authz", "Router"} {
		if ports[k], err = freeAddr(ctx); err != nil {
			return nil, err
		}
	}
	cfg := filepath.Join(dir, "mcp-authz.yaml")
	if err := writeConfig(cfg, map[string]string{
		"Front": ports["Front"], "Authz": ports["Authz"], "Router": ports["Router"],
		"Issuer": issuer, "SecretFile": secret, "Server": serverURL,
	}); err != nil {
		return nil, err
	}
	ma, err := start(ctx, dir, "mcp-authz", o.mcpAuthz, "serve", "--config", cfg)
	if err != nil {
		return nil, err
	}
	defer ma.stop()
	for _, k := range []string{"Authz", "Router", "Front"} {
		if err := waitTCP(ctx, ports[k], ma); err != nil {
			return nil, err
		}
	}
	plog, err := os.Create(filepath.Join(dir, "proxy.log"))
	if err != nil {
		return nil, err
	}
	defer plog.Close()
	proxy, stopProxy, err := bearerProxy(ctx, ports["Front"], token, plog)
	if err != nil {
		return nil, err
	}
	defer stopProxy()
	if out.Through, err = suite(ctx, o, pkg, s.spec, "http://"+proxy+"/mcp", filepath.Join(dir, "through")); err != nil {
		return nil, fmt.Errorf("through mcp-authz: %w", err)
	}
	out.Gaps, out.Info = gaps(s.spec, out.Direct, out.Through)
	return out, nil
}

// suite runs the conformance package's server scenarios for spec against
// url, the suite's active set (what --spec-version selects), and reads the
// results it wrote. Its exit status is not used: it is non-zero whenever a
// check fails, which through mcp-authz is expected today; the results are.
func suite(ctx context.Context, o options, pkg, spec, url, out string) (results, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	logf, err := os.Create(out + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, o.node, filepath.Join(pkg, "dist", "index.js"),
		"server", "--url", url, "--spec-version", spec, "-o", out)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("suite: %w (log: %s)", ctx.Err(), logf.Name())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("suite: %w", err)
	}
	res, rerr := readResults(out)
	if rerr != nil {
		return nil, fmt.Errorf("%w (log: %s)", rerr, logf.Name())
	}
	return res, nil
}

// bearerProxy forwards to the front and adds the caller's bearer token: the
// suite has no option to send an Authorization header. Nothing else
// changes: Host and Origin pass as the suite sent them (the DNS-rebinding
// scenario depends on them), responses stream unbuffered.
// Its own errors (a client that went away) go to errlog.
func bearerProxy(ctx context.Context, front, token string, errlog io.Writer) (addr string, stop func(), err error) {
	target := &url.URL{Scheme: "http", Host: front}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.Out.Header.Set("Authorization", "Bearer "+token)
		},
		FlushInterval: -1,
		ErrorLog:      log.New(errlog, "", log.LstdFlags),
	}
	lis, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("proxy: %w", err)
	}
	// Full duplex: the transport may still be reading the suite's request
	// body (to its EOF) when the front's answer arrives; an HTTP/1 server
	// otherwise closes the body once the answer starts, the transport's
	// write fails, it drops the connection mid-answer and the suite sees
	// "terminated" now and then.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	return lis.Addr().String(), func() { _ = srv.Close() }, nil
}

// login gets the suite caller's access token (password grant, public
// client mcp-cli of dev/realm.yaml).
func login(ctx context.Context, issuer string) (string, error) {
	form := url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {user}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("login as %s: status %d", user, resp.StatusCode)
	}
	return body.AccessToken, nil
}

func writeConfig(path string, data map[string]string) error {
	t, err := template.New("config").Option("missingkey=error").Parse(configTemplate)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.Execute(f, data); err != nil {
		_ = f.Close()
		return fmt.Errorf("config: %w", err)
	}
	return f.Close()
}

func packageVersion(pkg string) (string, error) {
	data, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil {
		return "", fmt.Errorf("suite: %w", err)
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Version == "" {
		return "", fmt.Errorf("suite: %s/package.json has no version", pkg)
	}
	return p.Version, nil
}

// checkNode refuses a Node other than 22, the one the suites and the
// inspector are pinned to.
func checkNode(ctx context.Context, node string) (string, error) {
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	v := strings.TrimSpace(string(out))
	if !strings.HasPrefix(v, "v22.") {
		return "", fmt.Errorf("node: %s is %s, want v22 (make conformance installs it)", node, v)
	}
	return v, nil
}

// sdkVersion is the go-sdk version the server binary was built with.
func sdkVersion(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown"
	}
	// Built as a package of the go-sdk module, which is then its main module.
	for _, m := range append([]*debug.Module{&info.Main}, info.Deps...) {
		if m.Path == "github.com/modelcontextprotocol/go-sdk" {
			return m.Version
		}
	}
	return "unknown"
}

// proc is a process the harness started; stop ends it by its PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs bin; it gets SIGTERM when ctx ends (Ctrl-C) or stop is called.
func start(ctx context.Context, dir, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	// Its own process group: Ctrl-C reaches the harness, which stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM to the process and SIGKILL if it has not exited 5s later.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %s (log: %s)", p.name, p.cmd.ProcessState, p.log)
	default:
		return nil
	}
}

func freeAddr(ctx context.Context) (string, error) {
	lis, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer lis.Close()
	return lis.Addr().String(), nil
}

// waitTCP waits until addr accepts connections, p exits or 15s pass.
func waitTCP(ctx context.Context, addr string, p *proc) error {
	return poll(ctx, p, addr, func() bool {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// waitHTTP waits until GET u answers 200.
func waitHTTP(ctx context.Context, u string, p *proc) error {
	return poll(ctx, p, u, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func poll(ctx context.Context, p *proc, what string, ready func() bool) error {
	deadline := time.Now().Add(15 * time.Second)
	for !ready() {
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready after 15s (log: %s)", p.name, what, p.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
