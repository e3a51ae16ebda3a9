//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// registrationGVK is Kuadrant's MCPServerRegistration, as our CRD serves it.
var registrationGVK = schema.GroupVersionKind{Group: "mcp.kuadrant.io", Version: "v1", Kind: "MCPServerRegistration"}

// controlPlane is a real kube-apiserver and etcd started by envtest with our
// CRDs and the Gateway API's installed.
type controlPlane struct {
	kubeconfig string // a kubeconfig file for processes
	client     client.Client
}

// startControlPlane starts envtest and stops it when the test ends; the test
// skips when KUBEBUILDER_ASSETS is unset.
func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: run with KUBEBUILDER_ASSETS=$(hack/envtest.sh) (make e2e sets it)")
	}
	ctrllog.SetLogger(logr.Discard())
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("go list -m sigs.k8s.io/gateway-api: %v", err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			repoFile("manifests/crd/bases"),
			repoFile("manifests/crd/kuadrant"),
			filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard"),
		},
		ErrorIfCRDPathMissing: true,
	}
	rc, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("envtest stop: %v", err)
		}
	})
	c, err := client.New(rc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &controlPlane{kubeconfig: writeFile(t, t.TempDir(), "kubeconfig", string(env.KubeConfig)), client: c}
}

// apply creates every object of a testdata YAML file in namespace ns, with
// ${NAME} replaced from vars, as kubectl apply -n ns -f would.
func (cp *controlPlane) apply(t *testing.T, ns, file string, vars map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	text := os.Expand(string(b), func(k string) string {
		v, ok := vars[k]
		if !ok {
			t.Fatalf("%s: no value for ${%s}", file, k)
		}
		return v
	})
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(text), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		u.SetNamespace(ns)
		if err := cp.client.Create(t.Context(), u); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == "HTTPRoute" {
			acceptRoute(t, cp, u)
		}
	}
}

// acceptRoute writes the status a Gateway controller writes when it accepts a
// route (none runs here): Accepted=True for each parentRef. mcp-authz counts
// only accepted routes.
func acceptRoute(t *testing.T, cp *controlPlane, u *unstructured.Unstructured) {
	t.Helper()
	refs, _, _ := unstructured.NestedSlice(u.Object, "spec", "parentRefs")
	var parents []any
	for _, ref := range refs {
		parents = append(parents, map[string]any{
			"parentRef":      ref,
			"controllerName": "istio.io/gateway-controller",
			"conditions": []any{map[string]any{
				"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
				"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
			}},
		})
	}
	if err := unstructured.SetNestedSlice(u.Object, parents, "status", "parents"); err != nil {
		t.Fatal(err)
	}
	if err := cp.client.Status().Update(t.Context(), u); err != nil {
		t.Fatalf("accept HTTPRoute %s: %v", u.GetName(), err)
	}
}

// readyCondition is the Ready condition of a registration; ok is false while
// it has none.
func (cp *controlPlane) readyCondition(ctx context.Context, ns, name string) (c metav1.Condition, ok bool, err error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(registrationGVK)
	if err := cp.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return c, false, err
	}
	conds, _, err := unstructured.NestedSlice(u.Object, "status", "conditions")
	if err != nil {
		return c, false, err
	}
	for _, raw := range conds {
		b, err := json.Marshal(raw)
		if err != nil {
			return c, false, err
		}
		var cond metav1.Condition
		if err := json.Unmarshal(b, &cond); err != nil {
			return c, false, err
		}
		if cond.Type == "Ready" {
			return cond, cond.ObservedGeneration == u.GetGeneration(), nil
		}
	}
	return c, false, nil
}

// runKubernetesMCP runs the npm kubernetes-mcp-server read-only against the
// control plane on a free loopback port and returns that port.
func runKubernetesMCP(t *testing.T, path string, cp *controlPlane) string {
	t.Helper()
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	start(t, addr, nil, path, "--kubeconfig", cp.kubeconfig, "--port", port, "--bind-address", "127.0.0.1", "--read-only")
	return port
}

// TestKubeUseCase1 is use case 1 ("No auth") of Kuadrant's Kubernetes MCP
// server guide end to end (issue 6's last "Done when", issue 7's first
// scenario): the real kubernetes-mcp-server runs against a real
// kube-apiserver, is registered by a real MCPServerRegistration with prefix
// kube_ behind an HTTPRoute and an ExternalName Service, and mcp-authz
// (front, authz, router, and the registration controller) picks it up:
// the registration turns Ready, its kube_ tools are listed through the
// front, and kube_namespaces_list, called with a go-sdk client and with the
// inspector CLI, lists namespace mcp-test. Deleting the registration while a
// client is connected takes its tools away.
func TestKubeUseCase1(t *testing.T) {
	k8sMCP := os.Getenv("MCP_AUTHZ_K8S_MCP")
	if k8sMCP == "" {
		t.Skip("MCP_AUTHZ_K8S_MCP is not set (make e2e sets it to the npm kubernetes-mcp-server)")
	}
	cp := startControlPlane(t)
	const ns = "mcp-test"
	if err := cp.client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	port := runKubernetesMCP(t, k8sMCP, cp)

	front := startKubeStack(t, cp, nil)
	endpoint := "http://" + front + "/mcp"

	// Before the registration, authz denies the tool as unknown.
	expectFront := func(want int) bool {
		resp, _ := post(t.Context(), t, endpoint, toolCall("kube_namespaces_list"), nil)
		return resp.StatusCode == want
	}
	if !expectFront(http.StatusForbidden) {
		t.Fatal("kube_namespaces_list is not denied before the registration exists")
	}
	created := time.Now()
	cp.apply(t, ns, "kube/use-case-1.yaml", map[string]string{"PORT": port})
	// The entry is in the registry when authz lets the call through (the
	// router then refuses it for want of a session).
	waitFor(t, "authz to let kube_namespaces_list through", 10*time.Second, func() bool { return !expectFront(http.StatusForbidden) })
	t.Logf("registry entry in force %v after the registration's creation", time.Since(created).Round(time.Millisecond))
	var ready metav1.Condition
	waitFor(t, "the registration to turn Ready", 10*time.Second, func() bool {
		c, ok, err := cp.readyCondition(t.Context(), ns, "kubernetes-mcp-server")
		if err != nil {
			t.Fatalf("read the registration: %v", err)
		}
		ready = c
		return ok && c.Status == metav1.ConditionTrue
	})
	t.Logf("registration status Ready %v after its creation: %s: %s", time.Since(created).Round(time.Millisecond), ready.Reason, ready.Message)
	if want := `registered as mcp-test/kubernetes-mcp-server with prefix "kube_" at http://`; ready.Reason != "Registered" || !strings.HasPrefix(ready.Message, want) {
		t.Errorf("Ready condition %s: %q, want Registered: %q", ready.Reason, ready.Message, want)
	}

	changed := make(chan struct{}, 1)
	stream := watchStream(bearer{})
	cs := connect(t, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: stream}, MaxRetries: -1}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	tools := listTools(t, cs)
	t.Logf("tools through the front: %q", tools)
	if !slices.Contains(tools, "kube_namespaces_list") || !slices.Contains(tools, "kube_pods_list") {
		t.Errorf("tools/list through the front lacks kube_namespaces_list or kube_pods_list: %q", tools)
	}
	for _, name := range tools {
		if !strings.HasPrefix(name, "kube_") {
			t.Errorf("tool %q without the registration's prefix", name)
		}
	}
	if slices.Contains(tools, "kube_pods_delete") {
		t.Error("kube_pods_delete is listed, but the server runs --read-only")
	}

	t.Run("go-sdk", func(t *testing.T) {
		text, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_namespaces_list"})
		if err != nil {
			t.Fatalf("kube_namespaces_list: %v", err)
		}
		if !strings.Contains(text, ns) || !strings.Contains(text, "kube-system") {
			t.Errorf("kube_namespaces_list does not list %s and kube-system:\n%s", ns, text)
		}
	})

	t.Run("inspector", func(t *testing.T) {
		inspector := os.Getenv("MCP_AUTHZ_INSPECTOR")
		if inspector == "" {
			t.Skip("MCP_AUTHZ_INSPECTOR is not set (make e2e sets it to the inspector CLI installed with Node 22)")
		}
		out := runInspector(t, inspector, endpoint, "--method", "tools/call", "--tool-name", "kube_namespaces_list")
		var res struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
			IsError bool `json:"isError"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("inspector output: %v\n%s", err, out)
		}
		if res.IsError || len(res.Content) == 0 || !strings.Contains(res.Content[0].Text, ns) {
			t.Errorf("inspector tools/call kube_namespaces_list does not list %s:\n%s", ns, out)
		}
	})

	// The GET stream that carries list_changed opens after initialize.
	stream.wait(t, 10*time.Second)
	reg := &unstructured.Unstructured{}
	reg.SetGroupVersionKind(registrationGVK)
	reg.SetNamespace(ns)
	reg.SetName("kubernetes-mcp-server")
	if err := cp.client.Delete(t.Context(), reg); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	var after []string
	waitFor(t, "the kube_ tools to leave tools/list", 10*time.Second, func() bool {
		after = listTools(t, cs)
		return !slices.ContainsFunc(after, func(s string) bool { return strings.HasPrefix(s, "kube_") })
	})
	t.Logf("kube_ tools gone from tools/list %v after the deletion; left: %q", time.Since(deleted).Round(time.Millisecond), after)
	select {
	case <-changed:
		t.Logf("notifications/tools/list_changed received %v after the deletion", time.Since(deleted).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Error("no notifications/tools/list_changed within 10s of the registration's deletion")
	}
	if _, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_namespaces_list"}); err == nil {
		t.Error("kube_namespaces_list succeeded after the registration was deleted")
	}
}

// startKubeStack runs one mcp-authz process (front, authz, router) whose
// registry is the cluster at cp, with env added, and returns the front's
// address once /readyz says the registrations are in.
func startKubeStack(t *testing.T, cp *controlPlane, env []string) (front string) {
	t.Helper()
	front, authzAddr, routerAddr, metricsAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := writeFile(t, t.TempDir(), "mcp-authz.yaml", fmt.Sprintf(`authz:
  listen: %s
gateway:
  listen: %s
  upstream: http://%s
  authz: %s
router:
  listen: %s
metrics:
  listen: %s
kubernetes:
  kubeconfig: %s
  leaderElectionNamespace: default
  retryInterval: 1s
  allowExternalNameServices: true
defaultPolicy: allow
log:
  level: debug
`, authzAddr, front, routerAddr, authzAddr, routerAddr, metricsAddr, cp.kubeconfig))
	p := start(t, front, env, filepath.Join(bin, "mcp-authz"), "serve", "--config", cfg)
	waitPort(t, routerAddr, p)
	waitPort(t, metricsAddr, p)
	waitFor(t, "mcp-authz /readyz", 10*time.Second, func() bool {
		resp, _ := get(t, "http://"+metricsAddr+"/readyz")
		return resp.StatusCode == http.StatusOK
	})
	return front
}
