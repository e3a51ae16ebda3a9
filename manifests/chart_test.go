package manifests_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The chart lives beside the manifests it must equal.
const chartDir = "../charts/mcp-authz"

// helmBin is the pinned helm the Makefile builds (hack/helm).
var helmBin = os.Getenv("MCP_AUTHZ_HELM")

func needHelm(t *testing.T) {
	t.Helper()
	if helmBin == "" {
		t.Skip("MCP_AUTHZ_HELM is unset: make test builds the pinned helm (hack/helm) and sets it")
	}
}

// helmTemplate renders the chart as release name in namespace ns, CRDs included.
func helmTemplate(t *testing.T, name, ns string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helmBin, append([]string{"template", name, chartDir, "--namespace", ns, "--include-crds"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %v: %w: %s", args, err, stderr.String())
	}
	return out, nil
}

// object is one Kubernetes object as plain YAML data.
type object = map[string]any

// objects splits a multi-document YAML stream into objects keyed by
// kind/namespace/name.
func objects(t *testing.T, data []byte) map[string]object {
	t.Helper()
	out := map[string]object{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if o == nil {
			continue
		}
		key := objectKey(o)
		if _, dup := out[key]; dup {
			t.Fatalf("%s appears twice", key)
		}
		out[key] = o
	}
}

func objectKey(o object) string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v/%v", o["kind"], md["namespace"], md["name"])
}

// get walks a path of map keys.
func get(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

// normalize removes what differs by design between the chart and kustomize:
// Helm's own labels (chart, managed-by, version), the Envoy pod's config
// checksum (kustomize has no templates; its users restart Envoy as its
// kustomization says); and reads every embedded *.yaml in a ConfigMap as
// data, so formatting and comments do not count.
func normalize(t *testing.T, o object) {
	t.Helper()
	if labels, ok := get(o, "metadata", "labels").(map[string]any); ok {
		for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"} {
			delete(labels, k)
		}
	}
	if ann, ok := get(o, "spec", "template", "metadata", "annotations").(map[string]any); ok {
		delete(ann, "checksum/envoy-config")
		if len(ann) == 0 {
			delete(get(o, "spec", "template", "metadata").(map[string]any), "annotations")
		}
	}
	if o["kind"] == "ConfigMap" {
		data, _ := o["data"].(map[string]any)
		for k, v := range data {
			if s, ok := v.(string); ok && strings.HasSuffix(k, ".yaml") {
				var parsed any
				if err := yaml.Unmarshal([]byte(s), &parsed); err != nil {
					t.Fatalf("ConfigMap %s: %s: %v", objectKey(o), k, err)
				}
				data[k] = parsed
			}
		}
	}
}

// TestChartMatchesKustomize renders the chart and the kustomizations for the
// same setup and requires the same objects, field for field. The chart does
// not own the namespace (helm install --create-namespace, or created before,
// with its Pod Security label): manifests/base's Namespace is left out.
func TestChartMatchesKustomize(t *testing.T) {
	needEnv(t)
	needHelm(t)
	tests := []struct {
		name           string
		values         []string
		kustomizations []string
	}{
		// The chart's crds/ also holds the shared MCPServerRegistration CRD (Helm
		// installs it only where it is absent); kustomize ships it apart.
		{name: "istio (defaults)", kustomizations: []string{".", "crd/kuadrant", "istio"}},
		{name: "plain envoy", values: []string{"--set", "mode=envoy"}, kustomizations: []string{".", "crd/kuadrant", "envoy/cluster"}},
		{name: "istio with monitoring", values: []string{"--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true"}, kustomizations: []string{".", "crd/kuadrant", "istio", "monitoring"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helmTemplate(t, "mcp-authz", "mcp-authz", tt.values...)
			if err != nil {
				t.Fatal(err)
			}
			chart := objects(t, out)
			kust := map[string]object{}
			for _, k := range tt.kustomizations {
				for key, o := range objects(t, render(t, k)) {
					if o["kind"] == "Namespace" {
						continue
					}
					kust[key] = o
				}
			}
			for _, o := range chart {
				normalize(t, o)
			}
			for _, o := range kust {
				normalize(t, o)
			}
			if diff := cmp.Diff(kust, chart); diff != "" {
				t.Errorf("chart differs from kustomize (-kustomize +chart):\n%s", diff)
			}
		})
	}
}

// TestChartDryRun applies what the chart renders, for each mode and the
// values an operator is most likely to set, to the envtest API server
// (server-side dry run: schemas of core types, Gateway API, Istio and
// Prometheus Operator CRDs, and the namespace's Pod Security level).
func TestChartDryRun(t *testing.T) {
	needEnv(t)
	needHelm(t)
	tests := []struct {
		name, release, ns string
		values            []string
	}{
		{name: "defaults", release: "mcp-authz", ns: "mcp-authz"},
		{name: "envoy", release: "mcp-authz", ns: "mcp-authz", values: []string{"--set", "mode=envoy", "--set", "envoy.service.type=LoadBalancer"}},
		{name: "monitoring, pinned digest", release: "mcp-authz", ns: "mcp-authz", values: []string{
			"--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prometheus",
			"--set", "image.digest=sha256:" + strings.Repeat("ab", 32),
		}},
		{name: "other release and namespace, no exchange", release: "authz", ns: "mcp-test", values: []string{
			"--set", "config.exchange=null", "--set", "replicaCount=3", "--set", "istio.gateway.create=false",
		}},
		{name: "mode none, own peers", release: "mcp-authz", ns: "mcp-authz", values: []string{
			"--set", "mode=none",
			"--set-json", `networkPolicy.authzFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"edge"}}}]`,
			"--set-json", `networkPolicy.routerFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"edge"}},"podSelector":{"matchLabels":{"app":"edge-proxy"}}}]`,
		}},
		{name: "no NetworkPolicy, no PDB", release: "mcp-authz", ns: "mcp-authz", values: []string{
			"--set", "networkPolicy.enabled=false", "--set", "podDisruptionBudget.enabled=false",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helmTemplate(t, tt.release, tt.ns, tt.values...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := kubectl(t, out, "apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager=chart-test", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry-run apply: %v\n%s", err, res)
			}
			if !strings.Contains(res, "serverside-applied (server dry run)") || strings.Contains(res, "Warning") {
				t.Errorf("unexpected kubectl output:\n%s", res)
			}
		})
	}
}

// TestChartRejects shows the chart refuses values it cannot honour rather
// than rendering something else.
func TestChartRejects(t *testing.T) {
	needHelm(t)
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{name: "unknown mode", values: []string{"--set", "mode=nginx"}, want: `mode "nginx"`},
		{name: "mode none without peers", values: []string{"--set", "mode=none"}, want: "networkPolicy: mode none needs"},
		{name: "no keys Secret", values: []string{"--set", "keys.secretName="}, want: "keys.secretName"},
		{name: "gateway without certificate", values: []string{"--set", "istio.gateway.tlsSecretName="}, want: "istio.gateway.tlsSecretName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helmTemplate(t, "mcp-authz", "mcp-authz", tt.values...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template = %v, want an error containing %q\n%s", err, tt.want, out)
			}
		})
	}
}

// TestChartLint runs helm lint --strict over the chart in each mode.
func TestChartLint(t *testing.T) {
	needHelm(t)
	for _, values := range [][]string{nil, {"--set", "mode=envoy"}, {"--set", "mode=none,networkPolicy.enabled=false"}, {"--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true"}} {
		t.Run(strings.Join(values, " "), func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), helmBin, append([]string{"lint", "--strict", chartDir}, values...)...).CombinedOutput()
			if err != nil {
				t.Errorf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// TestChartCRDsMatch: the chart installs the CRDs controller-gen generates
// (hack/manifests.sh copies them), unchanged.
func TestChartCRDsMatch(t *testing.T) {
	want, err := filepath.Glob(filepath.Join("crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, filepath.Join("crd", "kuadrant", "mcp.kuadrant.io_mcpserverregistrations.yaml"))
	slices.SortFunc(want, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	got, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if !slices.Equal(base(want), base(got)) {
		t.Fatalf("chart CRDs %v, manifests CRDs %v: run hack/manifests.sh", base(got), base(want))
	}
	for _, w := range want {
		a, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(w)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the chart's copy: run hack/manifests.sh", w)
		}
	}
}

// TestImageNamesAgree: make image names the image IMAGE_REPO:VERSION; the
// kustomization, the chart and the Dockerfile's usage name the same.
func TestImageNamesAgree(t *testing.T) {
	read := func(path string) string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	version := strings.TrimSpace(read("../VERSION"))
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(version) {
		t.Fatalf("VERSION %q is not v<semver>", version)
	}
	m := regexp.MustCompile(`(?m)^IMAGE_REPO \?= (\S+)$`).FindStringSubmatch(read("../Makefile"))
	if m == nil {
		t.Fatal("the Makefile sets no IMAGE_REPO")
	}
	repo := m[1]

	var kust struct {
		Images []struct{ Name, NewName, NewTag string } `json:"images"`
	}
	if err := yaml.Unmarshal([]byte(read("base/kustomization.yaml")), &kust); err != nil {
		t.Fatal(err)
	}
	if len(kust.Images) != 1 || kust.Images[0].NewName != repo || kust.Images[0].NewTag != version {
		t.Errorf("base/kustomization.yaml images %+v, want %s:%s", kust.Images, repo, version)
	}
	var chart struct{ Version, AppVersion string }
	if err := yaml.Unmarshal([]byte(read(filepath.Join(chartDir, "Chart.yaml"))), &chart); err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion != version || chart.Version != strings.TrimPrefix(version, "v") {
		t.Errorf("Chart.yaml version %q appVersion %q, want %q and %q", chart.Version, chart.AppVersion, strings.TrimPrefix(version, "v"), version)
	}
	var values struct {
		Image struct{ Repository, Tag, Digest string } `json:"image"`
	}
	if err := yaml.Unmarshal([]byte(read(filepath.Join(chartDir, "values.yaml"))), &values); err != nil {
		t.Fatal(err)
	}
	if values.Image.Repository != repo || values.Image.Tag != "" || values.Image.Digest != "" {
		t.Errorf("values.yaml image %+v, want repository %s and the appVersion tag", values.Image, repo)
	}
	if df := read("../Dockerfile"); !strings.Contains(df, "-t "+repo+":$(cat VERSION)") {
		t.Errorf("the Dockerfile's usage does not tag %s:$(cat VERSION)", repo)
	}
}
