package manifests_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	authzv1alpha1 "github.com/mcp-authz/mcp-authz/api/authz/v1alpha1"
	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
	"github.com/mcp-authz/mcp-authz/kube"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// One envtest control plane with our CRDs, the Gateway API CRDs, Istio's CRDs
// and Prometheus Operator's ServiceMonitor CRD; kubectl from the same assets.
var (
	restConfig *rest.Config
	k8s        client.Client
	kubeconfig string
	kubectlBin string
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		skipReason = "KUBEBUILDER_ASSETS is unset: run KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test ./manifests/ (make test sets it)"
		return m.Run()
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return fail(fmt.Errorf("go list -m sigs.k8s.io/gateway-api: %w", err))
	}
	istio := filepath.Join(assets, "istio-crds.yaml")
	if _, err := os.Stat(istio); err != nil {
		return fail(fmt.Errorf("istio CRDs (hack/envtest.sh installs them): %w", err))
	}
	promOperator := filepath.Join(assets, "prometheus-operator-crds.yaml")
	if _, err := os.Stat(promOperator); err != nil {
		return fail(fmt.Errorf("Prometheus Operator CRDs (hack/envtest.sh installs them): %w", err))
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join("crd", "bases"),
			filepath.Join("crd", "kuadrant"),
			filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard"),
			istio,
			promOperator,
		},
		ErrorIfCRDPathMissing: true,
	}
	restConfig, err = env.Start()
	if err != nil {
		return fail(fmt.Errorf("envtest: %w", err))
	}
	defer func() { _ = env.Stop() }()

	dir, err := os.MkdirTemp("", "manifests-test-")
	if err != nil {
		return fail(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return fail(err)
	}
	kubectlBin = filepath.Join(assets, "kubectl")
	sc, err := kube.Scheme()
	if err != nil {
		return fail(err)
	}
	if k8s, err = client.New(restConfig, client.Options{Scheme: sc}); err != nil {
		return fail(err)
	}
	// The namespaces the manifests expect to exist around them; mcp-authz
	// enforces the restricted Pod Security level, as base/namespace.yaml
	// says, so that the dry run of the Deployment is checked against it.
	for _, ns := range []string{"mcp-authz", "mcp-test", "mcp-samples", "gateway-system", "istio-system"} {
		labels := map[string]string{}
		if ns == "mcp-authz" {
			labels["pod-security.kubernetes.io/enforce"] = "restricted"
		}
		err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fail(err)
		}
	}
	return m.Run()
}

func needEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// kubectl runs kubectl against the envtest API server.
func kubectl(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The kustomizations shipped, the files meant to be applied on their own
// rather than through one, and the YAML files that are no Kubernetes
// resources, with the test that checks each.
var (
	kustomizations = []string{".", "crd/kuadrant", "istio", "envoy/cluster", "monitoring", "examples/kubernetes-mcp-server", "examples/kuadrant-samples"}
	standalone     = []string{}
	notResources   = map[string]string{
		"istio/mesh-config.yaml":   "TestMeshConfigPatch (a patch of istiod's mesh configuration)",
		"envoy/envoy.yaml":         "TestEnvoyConfigsValidate (an Envoy bootstrap)",
		"envoy/cluster/envoy.yaml": "TestEnvoyConfigsValidate and TestEnvoyClusterBootstrap (the ConfigMap envoy/cluster generates)",
	}
)

// render returns what kubectl would apply for a kustomization or a file.
func render(t *testing.T, path string) []byte {
	t.Helper()
	if strings.HasSuffix(path, ".yaml") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	out, err := kubectl(t, nil, "kustomize", path)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", path, err, out)
	}
	return []byte(out)
}

func TestManifestsDryRun(t *testing.T) {
	needEnv(t)
	for _, path := range append(slices.Clone(kustomizations), standalone...) {
		t.Run(path, func(t *testing.T) {
			out, err := kubectl(t, render(t, path), "apply", "--server-side", "--dry-run=server",
				"--field-manager=manifests-test", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry-run apply: %v\n%s", err, out)
			}
			// Warnings include Pod Security ("would violate PodSecurity
			// restricted") and deprecated fields.
			if !strings.Contains(out, "serverside-applied (server dry run)") || strings.Contains(out, "Warning") {
				t.Errorf("unexpected kubectl output:\n%s", out)
			}
		})
	}
}

// TestDryRunRejects shows the dry run validates: CRD schemas, CEL rules and
// core types are enforced.
func TestDryRunRejects(t *testing.T) {
	needEnv(t)
	tests := []struct {
		name, manifest string
	}{
		{name: "bad prefix", manifest: `
apiVersion: mcp.kuadrant.io/v1
kind: MCPServerRegistration
metadata: {name: x, namespace: mcp-test}
spec: {prefix: Kube-, targetRef: {name: r}}`},
		{name: "policy with cel and rego", manifest: `
apiVersion: authz.mcp-authz.dev/v1alpha1
kind: MCPAuthPolicy
metadata: {name: x, namespace: mcp-test}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}
  rules: [{name: a, cel: "true", rego: "package mcp.authz"}]`},
		{name: "istio unknown action", manifest: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: x, namespace: gateway-system}
spec: {action: MAYBE}`},
		{name: "pod security", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: mcp-authz}
spec: {containers: [{name: x, image: x}]}`},
		{name: "unknown field", manifest: `
apiVersion: v1
kind: Service
metadata: {name: x, namespace: mcp-test}
spec: {ports: [{port: 80}], colour: blue}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := kubectl(t, []byte(tt.manifest), "apply", "--server-side", "--dry-run=server", "-f", "-")
			if err == nil {
				t.Errorf("accepted:\n%s", out)
			}
		})
	}
}

// TestKuadrantVersions applies the guide's registration as Kuadrant serves
// it now (mcp.kuadrant.io/v1, the only version served, as in Kuadrant's own
// CRD): it works unchanged, an invalid prefix is refused, and the retired
// v1alpha1 is refused by the API server rather than half accepted.
func TestKuadrantVersions(t *testing.T) {
	needEnv(t)
	const guide = `
apiVersion: mcp.kuadrant.io/v1
kind: MCPServerRegistration
metadata:
  name: kubernetes-mcp-server-guide
  namespace: mcp-test
spec:
  prefix: kube_
  targetRef:
    group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: kubernetes-mcp
`
	out, err := kubectl(t, []byte(guide), "apply", "--server-side", "--dry-run=server", "-f", "-")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	bad := strings.Replace(guide, "prefix: kube_", "prefix: Kube-", 1)
	if out, err := kubectl(t, []byte(bad), "apply", "--server-side", "--dry-run=server", "-f", "-"); err == nil {
		t.Errorf("v1 accepted an invalid prefix:\n%s", out)
	}
	old := strings.Replace(guide, "mcp.kuadrant.io/v1\n", "mcp.kuadrant.io/v1alpha1\n", 1)
	out, err = kubectl(t, []byte(old), "apply", "--server-side", "--dry-run=server", "-f", "-")
	if err == nil {
		t.Errorf("v1alpha1 accepted; it is no longer served:\n%s", out)
	} else if !strings.Contains(out, "v1alpha1") {
		t.Errorf("v1alpha1 refused without naming the version:\n%s", out)
	}
}

// TestEveryManifestApplied makes sure no YAML file is left out of the dry run:
// each is a kustomization, listed by one, or standalone.
func TestEveryManifestApplied(t *testing.T) {
	covered := map[string]bool{}
	for _, s := range standalone {
		covered[filepath.Clean(s)] = true
	}
	for s := range notResources {
		covered[filepath.Clean(s)] = true
	}
	var walkKustomization func(dir string)
	walkKustomization = func(dir string) {
		data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		covered[filepath.Join(dir, "kustomization.yaml")] = true
		var k struct {
			Resources []string `json:"resources"`
		}
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, r := range k.Resources {
			p := filepath.Join(dir, r)
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				walkKustomization(p)
				continue
			}
			covered[p] = true
		}
	}
	for _, k := range kustomizations {
		walkKustomization(k)
	}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// The Keycloak realm and testdata are not Kubernetes manifests.
		if d.IsDir() && (path == "keycloak" || path == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".yaml") && !covered[path] {
			t.Errorf("%s is applied by no test: list it in a kustomization or in standalone", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sink compiles each policy set as the real consumer does.
type sink struct{ last chan []policy.Policy }

func (s *sink) SetPolicies(ps []policy.Policy) error {
	if _, err := policy.Compile(policy.Config{Policies: ps}); err != nil {
		return err
	}
	select {
	case <-s.last:
	default:
	}
	s.last <- ps
	return nil
}

// TestRBACIsLeastPrivilege applies the shipped RBAC for real and asks the API
// server what the service account may do.
func TestRBACIsLeastPrivilege(t *testing.T) {
	needEnv(t)
	if out, err := kubectl(t, render(t, "base"), "apply", "--server-side", "--field-manager=manifests-test", "-f", "-"); err != nil {
		t.Fatalf("apply base: %v\n%s", err, out)
	}
	const sa = "system:serviceaccount:mcp-authz:mcp-authz"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "list registrations", args: []string{"list", "mcpserverregistrations.mcp.kuadrant.io", "-A"}, want: "yes"},
		{name: "watch routes", args: []string{"watch", "httproutes.gateway.networking.k8s.io", "-A"}, want: "yes"},
		{name: "list services", args: []string{"list", "services", "-A"}, want: "yes"},
		{name: "list policies", args: []string{"list", "mcpauthpolicies.authz.mcp-authz.dev", "-A"}, want: "yes"},
		{name: "patch registration status", args: []string{"patch", "mcpserverregistrations.mcp.kuadrant.io", "--subresource=status", "-n", "mcp-test"}, want: "yes"},
		{name: "patch policy status", args: []string{"patch", "mcpauthpolicies.authz.mcp-authz.dev", "--subresource=status", "-n", "mcp-test"}, want: "yes"},
		{name: "update lease at home", args: []string{"update", "leases.coordination.k8s.io", "-n", "mcp-authz"}, want: "yes"},
		{name: "update registration spec", args: []string{"update", "mcpserverregistrations.mcp.kuadrant.io", "-n", "mcp-test"}, want: "no"},
		{name: "delete policies", args: []string{"delete", "mcpauthpolicies.authz.mcp-authz.dev", "-n", "mcp-test"}, want: "no"},
		{name: "watch secrets (only labelled ones are cached)", args: []string{"watch", "secrets", "-n", "mcp-test"}, want: "yes"},
		{name: "write secrets", args: []string{"update", "secrets", "-n", "mcp-test"}, want: "no"},
		{name: "watch referencegrants", args: []string{"watch", "referencegrants.gateway.networking.k8s.io", "-A"}, want: "yes"},
		{name: "update routes", args: []string{"update", "httproutes.gateway.networking.k8s.io", "-n", "mcp-test"}, want: "no"},
		{name: "lease elsewhere", args: []string{"update", "leases.coordination.k8s.io", "-n", "kube-system"}, want: "no"},
		{name: "list pods", args: []string{"list", "pods", "-A"}, want: "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := kubectl(t, nil, append([]string{"auth", "can-i", "--as", sa}, tt.args...)...)
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("can-i %v = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

// TestExampleWithShippedRBAC runs the controller as the shipped service
// account and applies the Kubernetes MCP server example: the registration
// becomes Ready, the policy Accepted (its CEL compiles), the audience override
// reaches the registry. This proves the RBAC is enough, not only small.
func TestExampleWithShippedRBAC(t *testing.T) {
	needEnv(t)
	if out, err := kubectl(t, render(t, "base"), "apply", "--server-side", "--field-manager=manifests-test", "-f", "-"); err != nil {
		t.Fatalf("apply base: %v\n%s", err, out)
	}
	rc := rest.CopyConfig(restConfig)
	rc.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:mcp-authz:mcp-authz"}
	reg := &registry.Registry{}
	pols := &sink{last: make(chan []policy.Policy, 1)}
	src, err := kube.New(kube.Config{
		AllowExternalNameServices: true, // the example follows Kuadrant's guide: an ExternalName Service
		LeaderElectionNamespace:   "mcp-authz",
	}, kube.Deps{RestConfig: rc, Registry: reg, Policies: pols, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})

	if out, err := kubectl(t, render(t, "examples/kubernetes-mcp-server"), "apply", "--server-side", "--field-manager=manifests-test", "-f", "-"); err != nil {
		t.Fatalf("apply example: %v\n%s", err, out)
	}
	acceptRoutes(t, "mcp-test")
	const name = "mcp-test/kubernetes-mcp-server"
	want := registry.Server{Category: []string{"uncategorised"}, Name: name, Prefix: "kube_", URL: "http://kubernetes-mcp.example.com:9999/mcp", Audience: "mcp-test/kubernetes-mcp",
		Scopes: []string{"openid", "profile", "groups"}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, ok := reg.Load().Server(name)
		if ok && reflect.DeepEqual(*got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry holds %v, want %v", reg.Load().Servers(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}

	waitCondition(t, &mcpv1.MCPServerRegistration{}, "kubernetes-mcp-server", kube.ConditionReady)
	waitCondition(t, &authzv1alpha1.MCPAuthPolicy{}, "kubernetes-mcp", kube.ConditionAccepted)
	select {
	case ps := <-pols.last:
		if len(ps) != 1 || ps[0].Name != "mcp-test/kubernetes-mcp/tool-roles" || !slices.Equal(ps[0].Servers, []string{name}) {
			t.Errorf("policies = %+v, want the example's tool-roles rule on %s", ps, name)
		}
	case <-time.After(10 * time.Second):
		t.Error("no policy set was handed on")
	}
}

// acceptRoutes writes, for every HTTPRoute in ns, the status a Gateway controller
// writes when it accepts it (no Gateway controller runs in envtest).
func acceptRoutes(t *testing.T, ns string) {
	t.Helper()
	var routes gwv1.HTTPRouteList
	if err := k8s.List(t.Context(), &routes, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for i := range routes.Items {
		r := &routes.Items[i]
		r.Status.Parents = nil
		for _, p := range r.Spec.ParentRefs {
			r.Status.Parents = append(r.Status.Parents, gwv1.RouteParentStatus{ParentRef: p, ControllerName: "istio.io/gateway-controller",
				Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}}})
		}
		if err := k8s.Status().Update(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCondition waits until obj (in mcp-test) has condition typ True.
func waitCondition(t *testing.T, obj client.Object, name, typ string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var conds []metav1.Condition
		err := k8s.Get(t.Context(), client.ObjectKey{Namespace: "mcp-test", Name: name}, obj)
		switch o := obj.(type) {
		case *mcpv1.MCPServerRegistration:
			conds = o.Status.Conditions
		case *authzv1alpha1.MCPAuthPolicy:
			conds = o.Status.Conditions
		}
		if err == nil && meta.IsStatusConditionTrue(conds, typ) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %v, conditions %+v", name, typ, err, conds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
