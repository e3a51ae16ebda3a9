package kube_test

import (
	"context"
	"fmt"
	"github.com/mcp-authz/mcp-authz/registry"
	"k8s.io/client-go/rest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/mcp-authz/mcp-authz/kube"
)

// TestKubernetesMCPServer is use case 1 of Kuadrant's Kubernetes MCP server
// guide on the registry side: the real kubernetes-mcp-server (npm) runs against
// the envtest API server, is registered through an ExternalName Service, an
// HTTPRoute and an MCPServerRegistration with prefix kube_, and its
// namespaces_list, called at the URL the registry resolved, lists this test's
// namespace.
func TestKubernetesMCPServer(t *testing.T) {
	needEnv(t)
	bin := os.Getenv("MCP_AUTHZ_K8S_MCP")
	if bin == "" {
		t.Skip("MCP_AUTHZ_K8S_MCP is not set (make test sets it to the npm kubernetes-mcp-server)")
	}
	port := startKubernetesMCP(t, bin)

	// The guide's ExternalName Service: allowed here as an operator would
	// allow it (refused by default).
	f := start(t, func(c *kube.Config, _ *rest.Config) { c.AllowExternalNameServices = true })
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes-mcp-external"},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "http", Port: port}},
		},
	}
	reg := registration("kubernetes-mcp-server", "kube_", "kubernetes-mcp")
	f.create(svc, route("kubernetes-mcp", []string{"kubernetes-mcp.example.com"},
		[]gwv1.HTTPBackendRef{backend("kubernetes-mcp-external", port)}), reg)
	f.condition(reg, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)

	// The status is written as the snapshot is stored: wait for the latter.
	var srv *registry.Server
	const name = "namespaces_list"
	eventually(t, 10*time.Second, func() string {
		s, name, ok := f.reg.Load().Resolve("kube_namespaces_list")
		if !ok || name != "namespaces_list" || s.Name != f.ns+"/kubernetes-mcp-server" {
			return fmt.Sprintf("Resolve(kube_namespaces_list) = %+v, %q, %v", s, name, ok)
		}
		srv = s
		return ""
	})
	if want := "http://localhost:" + strconv.Itoa(int(port)) + "/mcp"; srv.URL != want {
		t.Fatalf("URL %q, want %q", srv.URL, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "kube-test", Version: "v0"}, nil)
	var session *mcp.ClientSession
	for {
		var err error
		session, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("connect to kubernetes-mcp-server: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer func() { _ = session.Close() }()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if res.IsError || !strings.Contains(text.String(), f.ns) {
		t.Errorf("%s (error %v) does not list namespace %s:\n%s", name, res.IsError, f.ns, text.String())
	}
}

// startKubernetesMCP runs kubernetes-mcp-server read-only on a free loopback
// port with the envtest kubeconfig and stops it, by PID, when the test ends.
func startKubernetesMCP(t *testing.T, bin string) int32 {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(cfg, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	// The npm launcher runs the server as its child: give both a process
	// group of their own and stop that group, by its id, at the end.
	cmd := exec.Command(bin, "--kubeconfig", cfg, "--port", strconv.Itoa(port), "--bind-address", "127.0.0.1", "--read-only")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kubernetes-mcp-server: %v", err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
	})
	return int32(port)
}
