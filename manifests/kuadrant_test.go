package manifests_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
	"github.com/mcp-authz/mcp-authz/kube"
	"github.com/mcp-authz/mcp-authz/registry"
)

// TestKuadrantSamples runs the controller as the shipped service account on
// registrations shaped like Kuadrant mcp-gateway's samples (an external server
// behind an Istio Hostname, an API-key server, an HTTPS server with its own CA,
// a per-user server): each becomes Ready, with what it says in the registry.
func TestKuadrantSamples(t *testing.T) {
	needEnv(t)
	if out, err := kubectl(t, render(t, "base"), "apply", "--server-side", "--field-manager=manifests-test", "-f", "-"); err != nil {
		t.Fatalf("apply base: %v\n%s", err, out)
	}
	rc := rest.CopyConfig(restConfig)
	rc.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:mcp-authz:mcp-authz"}
	reg := &registry.Registry{}
	src, err := kube.New(kube.Config{
		Namespaces:              []string{"mcp-samples", "mcp-authz"},
		LeaderElectionNamespace: "mcp-authz", LeaderElectionID: "kuadrant-samples",
	}, kube.Deps{RestConfig: rc, Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kube source: %v", err)
		}
	})

	if out, err := kubectl(t, render(t, "examples/kuadrant-samples"), "apply", "--server-side", "--field-manager=manifests-test", "-f", "-"); err != nil {
		t.Fatalf("apply samples: %v\n%s", err, out)
	}
	acceptRoutes(t, "mcp-samples")
	ca, err := os.ReadFile(filepath.Join("examples", "kuadrant-samples", "https.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pem := caFromYAML(t, ca)
	srv := func(name, prefix, url string, mutate func(*registry.Server)) registry.Server {
		s := registry.Server{Name: "mcp-samples/" + name, Prefix: prefix, URL: url, Audience: "mcp-samples/" + name, Category: []string{"uncategorised"}}
		if mutate != nil {
			mutate(&s)
		}
		return s
	}
	want := []registry.Server{
		srv("api-key-server", "apikey_", "http://api-key-server.mcp-samples.svc.cluster.local:9090/mcp", func(s *registry.Server) {
			s.Credential = registry.NewCredential("Secret mcp-samples/api-key-server key token", "Bearer test-api-key")
		}),
		srv("per-user-server", "user_", "http://per-user-server.mcp-samples.svc.cluster.local:8080/mcp", func(s *registry.Server) {
			s.UserSpecificList, s.Category, s.Hint, s.Tags = true, []string{"identity"}, "Tools that depend on who calls", []string{"per-user"}
		}),
		srv("remote-mcp", "remote_", "https://mcp.remote.example.com:443/mcp", nil),
		srv("tls-server", "tls_", "https://tls-server.mcp-samples.svc.cluster.local:8443/mcp", func(s *registry.Server) { s.CACert = pem }),
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		diff := cmp.Diff(want, reg.Load().Servers())
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry (-want +got):\n%s", diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range want {
		name := strings.TrimPrefix(s.Name, "mcp-samples/")
		eventuallyReady(t, "mcp-samples", name)
	}
}

// caFromYAML returns the ca.crt of the Secret in a YAML stream.
func caFromYAML(t *testing.T, data []byte) []byte {
	t.Helper()
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var o struct {
			Kind       string            `json:"kind"`
			StringData map[string]string `json:"stringData"`
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if o.Kind == "Secret" {
			return []byte(strings.TrimSpace(o.StringData["ca.crt"]) + "\n")
		}
	}
	t.Fatal("no Secret")
	return nil
}

// eventuallyReady waits for a registration's Ready=True.
func eventuallyReady(t *testing.T, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var r mcpv1.MCPServerRegistration
		err := k8s.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &r)
		if err == nil && meta.IsStatusConditionTrue(r.Status.Conditions, kube.ConditionReady) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s not Ready: %v %+v", ns, name, err, r.Status.Conditions)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kuadrantSchema is what Kuadrant mcp-gateway's MCPServerRegistration CRD says
// of mcp.kuadrant.io/v1, written down from its published CRD as facts (types,
// defaults, enums, patterns, bounds, CEL rules), without its descriptions. Our
// CRD, generated from api/v1, must equal it; the coexistence test installs a
// stand-in for Kuadrant's CRD built from it.
func kuadrantSchema() apiextensionsv1.CustomResourceDefinitionVersion {
	str := func(mut func(*apiextensionsv1.JSONSchemaProps)) apiextensionsv1.JSONSchemaProps {
		p := apiextensionsv1.JSONSchemaProps{Type: "string"}
		if mut != nil {
			mut(&p)
		}
		return p
	}
	def := func(v string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(v)} }
	enum := func(vs ...string) []apiextensionsv1.JSON {
		var out []apiextensionsv1.JSON
		for _, v := range vs {
			out = append(out, apiextensionsv1.JSON{Raw: []byte(`"` + v + `"`)})
		}
		return out
	}
	labels := func(max int64) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "array", MaxItems: ptr.To(max), XListType: ptr.To("atomic"),
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string", MinLength: ptr.To[int64](1), MaxLength: ptr.To[int64](128)}}}
	}
	secretRef := func(key string) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "object", Required: []string{"name"}, Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"name": str(func(p *apiextensionsv1.JSONSchemaProps) { p.MinLength = ptr.To[int64](1) }),
			"key":  str(func(p *apiextensionsv1.JSONSchemaProps) { p.Default = def(`"` + key + `"`) }),
		}}
	}
	category := labels(3)
	category.Default = def(`["uncategorised"]`)
	spec := apiextensionsv1.JSONSchemaProps{
		Type: "object", Required: []string{"targetRef"},
		XValidations: apiextensionsv1.ValidationRules{{Rule: `self.userSpecificList != "Enabled" || self.prefix != ""`}},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"targetRef": {Type: "object", Required: []string{"name"}, Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"group": str(func(p *apiextensionsv1.JSONSchemaProps) {
					p.Default, p.Enum = def(`"gateway.networking.k8s.io"`), enum("gateway.networking.k8s.io")
				}),
				"kind":      str(func(p *apiextensionsv1.JSONSchemaProps) { p.Default, p.Enum = def(`"HTTPRoute"`), enum("HTTPRoute") }),
				"name":      str(func(p *apiextensionsv1.JSONSchemaProps) { p.MinLength = ptr.To[int64](1) }),
				"namespace": str(nil),
			}},
			"prefix": str(func(p *apiextensionsv1.JSONSchemaProps) {
				p.Pattern = `^[a-z0-9][a-z0-9_]*$`
				p.XValidations = apiextensionsv1.ValidationRules{{Rule: "self == oldSelf", Message: "prefix is immutable once set"}}
			}),
			"path":            str(func(p *apiextensionsv1.JSONSchemaProps) { p.Default = def(`"/mcp"`) }),
			"credentialRef":   secretRef("token"),
			"caCertSecretRef": secretRef("ca.crt"),
			"state": str(func(p *apiextensionsv1.JSONSchemaProps) {
				p.Default, p.Enum = def(`"Enabled"`), enum("Enabled", "Disabled")
			}),
			"userSpecificList": str(func(p *apiextensionsv1.JSONSchemaProps) {
				p.Default, p.Enum = def(`"Disabled"`), enum("Enabled", "Disabled")
			}),
			"tokenURLElicitation": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"url": str(func(p *apiextensionsv1.JSONSchemaProps) { p.Pattern = `^https?://` }),
			}},
			"category": category,
			"hint":     str(func(p *apiextensionsv1.JSONSchemaProps) { p.MaxLength = ptr.To[int64](256) }),
			"tags":     labels(10),
		},
	}
	condition := apiextensionsv1.JSONSchemaProps{Type: "object", Required: []string{"lastTransitionTime", "message", "reason", "status", "type"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"lastTransitionTime": {Type: "string", Format: "date-time"},
			"message":            {Type: "string", MaxLength: ptr.To[int64](32768)},
			"observedGeneration": {Type: "integer", Format: "int64", Minimum: ptr.To[float64](0)},
			"reason":             {Type: "string", MinLength: ptr.To[int64](1), MaxLength: ptr.To[int64](1024), Pattern: `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`},
			"status":             {Type: "string", Enum: enum("True", "False", "Unknown")},
			"type":               {Type: "string", MaxLength: ptr.To[int64](316), Pattern: `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`},
		}}
	col := func(name, typ, path string) apiextensionsv1.CustomResourceColumnDefinition {
		return apiextensionsv1.CustomResourceColumnDefinition{Name: name, Type: typ, JSONPath: path}
	}
	return apiextensionsv1.CustomResourceDefinitionVersion{
		Name: "v1", Served: true, Storage: true,
		Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
		AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
			col("Prefix", "string", ".spec.prefix"), col("Target", "string", ".spec.targetRef.name"), col("Path", "string", ".spec.path"),
			col("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"), col("Category", "string", ".spec.category"),
			col("Credentials", "string", ".spec.credentialRef.name"), col("Age", "date", ".metadata.creationTimestamp"),
		},
		Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object",
			Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"apiVersion": {Type: "string"}, "kind": {Type: "string"}, "metadata": {Type: "object"},
				"spec": spec,
				"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"conditions": {Type: "array", XListType: ptr.To("map"), XListMapKeys: []string{"type"},
						Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &condition}},
				}},
			},
		}},
	}
}

// stripped removes what is prose, not schema: descriptions, and the messages of
// CEL rules other than prefix immutability (worded by each project).
func stripped(v apiextensionsv1.CustomResourceDefinitionVersion) apiextensionsv1.CustomResourceDefinitionVersion {
	v = *v.DeepCopy()
	var walk func(p *apiextensionsv1.JSONSchemaProps)
	walk = func(p *apiextensionsv1.JSONSchemaProps) {
		p.Description = ""
		for i := range p.XValidations {
			p.XValidations[i].Rule = strings.TrimSpace(p.XValidations[i].Rule)
			if p.XValidations[i].Message != "prefix is immutable once set" {
				p.XValidations[i].Message = ""
			}
		}
		for k, c := range p.Properties {
			walk(&c)
			p.Properties[k] = c
		}
		if p.Items != nil && p.Items.Schema != nil {
			walk(p.Items.Schema)
		}
	}
	walk(v.Schema.OpenAPIV3Schema)
	for i := range v.AdditionalPrinterColumns {
		v.AdditionalPrinterColumns[i].Description = ""
	}
	return v
}

func readCRD(t *testing.T, path string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatal(err)
	}
	return &crd
}

// served lists the versions a CRD serves.
func served(crd *apiextensionsv1.CustomResourceDefinition) []apiextensionsv1.CustomResourceDefinitionVersion {
	var out []apiextensionsv1.CustomResourceDefinitionVersion
	for _, v := range crd.Spec.Versions {
		if v.Served {
			out = append(out, v)
		}
	}
	return out
}

// TestRegistrationCRDIsKuadrants: our generated CRD has Kuadrant's names,
// scope, one served version v1 and its schema, defaults, validation and
// printer columns. With MCP_AUTHZ_KUADRANT_CRD naming a copy of Kuadrant's CRD
// (config/crd/mcp.kuadrant.io_mcpserverregistrations.yaml of
// Kuadrant/mcp-gateway; not committed here), the table is checked against it too.
func TestRegistrationCRDIsKuadrants(t *testing.T) {
	ours := readCRD(t, filepath.Join("crd", "kuadrant", "mcp.kuadrant.io_mcpserverregistrations.yaml"))
	check := func(what string, crd *apiextensionsv1.CustomResourceDefinition) {
		t.Helper()
		if crd.Name != "mcpserverregistrations.mcp.kuadrant.io" || crd.Spec.Group != "mcp.kuadrant.io" || crd.Spec.Scope != "Namespaced" ||
			crd.Spec.Names.Kind != "MCPServerRegistration" || crd.Spec.Names.Plural != "mcpserverregistrations" ||
			!slices.Equal(crd.Spec.Names.ShortNames, []string{"mcpsr"}) {
			t.Errorf("%s: names %s %+v", what, crd.Name, crd.Spec.Names)
		}
		vs := served(crd)
		if len(vs) != 1 {
			t.Fatalf("%s serves %d versions, want v1 only", what, len(vs))
		}
		if diff := cmp.Diff(stripped(kuadrantSchema()), stripped(vs[0])); diff != "" {
			t.Errorf("%s differs from the expectations (-want +got):\n%s", what, diff)
		}
	}
	check("manifests/crd/kuadrant", ours)
	if path := os.Getenv("MCP_AUTHZ_KUADRANT_CRD"); path != "" {
		check(path, readCRD(t, path))
	}
}

// TestInstallBesideKuadrant: on a cluster where Kuadrant mcp-gateway installed
// its MCPServerRegistration CRD (here a stand-in with its schema, built from
// kuadrantSchema, and descriptions of its own) and registrations exist,
// installing mcp-authz by kustomize, by helm template and by helm install
// (server-side apply) changes neither the CRD nor the stored registrations.
// It runs its own API server: the package's has our CRD installed.
func TestInstallBesideKuadrant(t *testing.T) {
	needEnv(t)
	needHelm(t)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, bin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append([]string{"--kubeconfig", kc}, args...)...)
		cmd.Stdin = strings.NewReader(string(stdin))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
		}
		return string(out)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(c.Scheme()); err != nil {
		t.Fatal(err)
	}

	// Kuadrant's CRD, as Kuadrant's installer leaves it (kubectl apply).
	v := kuadrantSchema()
	v.Schema.OpenAPIV3Schema.Description = "Kuadrant mcp-gateway's MCPServerRegistration (test stand-in)"
	crd := &apiextensionsv1.CustomResourceDefinition{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "mcpserverregistrations.mcp.kuadrant.io",
			Annotations: map[string]string{"controller-gen.kubebuilder.io/version": "v0.20.0"}},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "mcp.kuadrant.io", Scope: "Namespaced",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "MCPServerRegistration", ListKind: "MCPServerRegistrationList",
				Plural: "mcpserverregistrations", Singular: "mcpserverregistration", ShortNames: []string{"mcpsr"}},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{v},
		},
	}
	data, err := yaml.Marshal(crd)
	if err != nil {
		t.Fatal(err)
	}
	run(data, filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), "apply", "-f", "-")
	if err := envtest.WaitForCRDs(cfg, []*apiextensionsv1.CustomResourceDefinition{crd}, envtest.CRDInstallOptions{MaxTime: 30 * time.Second, PollInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	kubectlBin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	run([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n"), kubectlBin, "apply", "-f", "-")
	regs := `apiVersion: mcp.kuadrant.io/v1
kind: MCPServerRegistration
metadata: {name: defaults, namespace: team}
spec:
  targetRef: {name: r}
---
apiVersion: mcp.kuadrant.io/v1
kind: MCPServerRegistration
metadata: {name: full, namespace: team}
spec:
  prefix: full_
  path: /v1/mcp
  targetRef: {name: r, namespace: other}
  credentialRef: {name: s, key: api}
  caCertSecretRef: {name: c}
  userSpecificList: Enabled
  category: [a, b]
  hint: h
  tags: [t]
  tokenURLElicitation: {url: "https://vault.example.com/"}
`
	run([]byte(regs), kubectlBin, "apply", "-f", "-")
	snapshot := func() (string, map[string]string) {
		var got apiextensionsv1.CustomResourceDefinition
		if err := c.Get(t.Context(), client.ObjectKey{Name: crd.Name}, &got); err != nil {
			t.Fatal(err)
		}
		spec, err := yaml.Marshal(got.Spec)
		if err != nil {
			t.Fatal(err)
		}
		objs := map[string]string{}
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("mcp.kuadrant.io/v1")
		list.SetKind("MCPServerRegistrationList")
		if err := c.List(t.Context(), list); err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			b, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			objs[o.GetName()] = string(b)
		}
		return fmt.Sprintf("resourceVersion %s generation %d\n%s", got.ResourceVersion, got.Generation, spec), objs
	}
	crdBefore, objsBefore := snapshot()
	if !strings.Contains(objsBefore["defaults"], "key: token") && !strings.Contains(objsBefore["full"], "key: ca.crt") {
		t.Fatalf("Kuadrant's defaults were not applied:\n%v", objsBefore)
	}

	for _, ns := range []string{"mcp-authz", "mcp-helm-template", "mcp-helm-install"} {
		run([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n"), kubectlBin, "apply", "-f", "-")
	}
	steps := []struct {
		name    string
		install func()
	}{
		{"kustomize manifests/", func() {
			run(render(t, "."), kubectlBin, "apply", "--server-side", "--field-manager=mcp-authz", "-f", "-")
		}},
		{"helm template", func() {
			out, err := helmTemplateNoCRDs(t)
			if err != nil {
				t.Fatal(err)
			}
			run(out, kubectlBin, "apply", "--server-side", "--field-manager=mcp-authz-helm", "-f", "-")
		}},
		{"helm install (crds/ skipped where present)", func() {
			out := run(nil, helmBin, "install", "mcp-authz-i", chartDir, "--namespace", "mcp-helm-install", "--set", "mode=none,networkPolicy.enabled=false")
			if !strings.Contains(out, "STATUS: deployed") {
				t.Fatalf("helm install:\n%s", out)
			}
		}},
	}
	for _, step := range steps {
		step.install()
		crdAfter, objsAfter := snapshot()
		if diff := cmp.Diff(crdBefore, crdAfter); diff != "" {
			t.Errorf("%s changed Kuadrant's CRD (-before +after):\n%s", step.name, diff)
		}
		if diff := cmp.Diff(objsBefore, objsAfter); diff != "" {
			t.Errorf("%s changed the stored registrations (-before +after):\n%s", step.name, diff)
		}
	}
	// mcp-authz's own CRD is installed.
	var own apiextensionsv1.CustomResourceDefinition
	if err := c.Get(t.Context(), client.ObjectKey{Name: "mcpauthpolicies.authz.mcp-authz.dev"}, &own); err != nil {
		t.Errorf("mcp-authz's own CRD: %v", err)
	}
}

// helmTemplateNoCRDs renders the chart as helm template does by default: CRDs
// are left out.
func helmTemplateNoCRDs(t *testing.T) ([]byte, error) {
	t.Helper()
	return exec.CommandContext(t.Context(), helmBin, "template", "mcp-authz-t", chartDir, "--namespace", "mcp-helm-template",
		"--set", "mode=none,networkPolicy.enabled=false").Output()
}
