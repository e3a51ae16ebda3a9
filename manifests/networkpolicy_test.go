package manifests_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// peer is a pod somewhere in the cluster that tries to connect.
type peer struct {
	namespace string
	labels    map[string]string
}

// admits evaluates np as a CNI would for ingress to a pod with podLabels in
// np's namespace: may from connect to port (TCP)?
func admits(t *testing.T, np *networkingv1.NetworkPolicy, podLabels map[string]string, from peer, port int32) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(podLabels)) {
		return true // not selected: this policy does not isolate the pod
	}
	nsLabels := labels.Set{"kubernetes.io/metadata.name": from.namespace}
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if (p.Protocol == nil || *p.Protocol == "TCP") && p.Port != nil && p.Port.IntVal == port && p.EndPort == nil {
				portOK = true
			}
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, f := range rule.From {
			if f.IPBlock != nil {
				t.Errorf("ipBlock peers are not expected: %+v", f.IPBlock)
				continue
			}
			nsOK := f.NamespaceSelector == nil && from.namespace == np.Namespace
			if f.NamespaceSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(f.NamespaceSelector)
				if err != nil {
					t.Fatal(err)
				}
				nsOK = s.Matches(nsLabels)
			}
			podOK := true
			if f.PodSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(f.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				podOK = s.Matches(labels.Set(from.labels))
			}
			if nsOK && podOK {
				return true
			}
		}
	}
	return false
}

// partial reads the fields of one rendered object that into declares.
func partial(t *testing.T, o object, into any) {
	t.Helper()
	data, err := yaml.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", objectKey(o), err)
	}
}

// typed converts one rendered object into a typed API object, strictly.
func typed(t *testing.T, o object, into any) {
	t.Helper()
	data, err := yaml.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", objectKey(o), err)
	}
}

// TestNetworkPolicy checks who reaches which port of mcp-authz, in the
// kustomize manifests and the chart alike: only the gateway's namespace
// reaches ext_authz, only the gateway's pods reach the router, only the
// monitoring namespace the metrics; nothing reaches any other port.
func TestNetworkPolicy(t *testing.T) {
	istioGateway := peer{namespace: "gateway-system", labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "mcp-gateway"}}
	envoyPod := peer{namespace: "mcp-authz", labels: map[string]string{"app.kubernetes.io/name": "mcp-authz-envoy", "app.kubernetes.io/instance": "mcp-authz"}}
	type check struct {
		name string
		from peer
		port int32
		want bool
	}
	istioChecks := []check{
		{name: "gateway to ext_authz", from: istioGateway, port: 9001, want: true},
		{name: "gateway to router", from: istioGateway, port: 8081, want: true},
		{name: "other pod of the gateway namespace to ext_authz", from: peer{namespace: "gateway-system"}, port: 9001, want: true},
		{name: "other pod of the gateway namespace to router", from: peer{namespace: "gateway-system", labels: map[string]string{"app": "x"}}, port: 8081, want: false},
		{name: "another gateway to router", from: peer{namespace: "gateway-system", labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "other"}}, port: 8081, want: false},
		{name: "gateway label elsewhere to router", from: peer{namespace: "mcp-test", labels: istioGateway.labels}, port: 8081, want: false},
		{name: "gateway label elsewhere to ext_authz", from: peer{namespace: "mcp-test", labels: istioGateway.labels}, port: 9001, want: false},
		{name: "mcp-authz's own namespace to router", from: peer{namespace: "mcp-authz"}, port: 8081, want: false},
		{name: "gateway to metrics", from: istioGateway, port: 9090, want: false},
		{name: "monitoring to metrics", from: peer{namespace: "monitoring"}, port: 9090, want: true},
		{name: "monitoring to router", from: peer{namespace: "monitoring"}, port: 8081, want: false},
		{name: "gateway to another port", from: istioGateway, port: 8080, want: false},
	}
	envoyChecks := []check{
		{name: "envoy to ext_authz", from: envoyPod, port: 9001, want: true},
		{name: "envoy to router", from: envoyPod, port: 8081, want: true},
		{name: "other pod of the namespace to router", from: peer{namespace: "mcp-authz", labels: map[string]string{"app.kubernetes.io/name": "mcp-authz"}}, port: 8081, want: false},
		{name: "envoy label elsewhere to router", from: peer{namespace: "mcp-test", labels: envoyPod.labels}, port: 8081, want: false},
		{name: "another namespace to ext_authz", from: peer{namespace: "gateway-system", labels: istioGateway.labels}, port: 9001, want: false},
		{name: "monitoring to metrics", from: peer{namespace: "monitoring"}, port: 9090, want: true},
		{name: "envoy to metrics", from: envoyPod, port: 9090, want: false},
	}
	tests := []struct {
		name   string
		render func(t *testing.T) []byte
		// gatewayPods are the labels of the front's pods as shipped.
		checks []check
	}{
		{name: "kustomize istio", render: func(t *testing.T) []byte {
			return append(render(t, "."), append([]byte("\n---\n"), render(t, "istio")...)...)
		}, checks: istioChecks},
		{name: "kustomize envoy", render: func(t *testing.T) []byte {
			return append(render(t, "."), append([]byte("\n---\n"), render(t, "envoy/cluster")...)...)
		}, checks: envoyChecks},
		{name: "chart istio", render: chartRender(), checks: istioChecks},
		{name: "chart envoy", render: chartRender("--set", "mode=envoy"), checks: envoyChecks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name[:5] == "chart" {
				needHelm(t)
			} else {
				needEnv(t)
			}
			objs := objects(t, tt.render(t))
			var np networkingv1.NetworkPolicy
			var dep appsv1.Deployment
			var envoy *appsv1.Deployment
			for key, o := range objs {
				switch key {
				case "NetworkPolicy/mcp-authz/mcp-authz":
					typed(t, o, &np)
				case "Deployment/mcp-authz/mcp-authz":
					typed(t, o, &dep)
				case "Deployment/mcp-authz/mcp-authz-envoy":
					envoy = &appsv1.Deployment{}
					typed(t, o, envoy)
				}
			}
			if np.Name == "" || dep.Name == "" {
				t.Fatalf("no NetworkPolicy or Deployment mcp-authz among %d objects", len(objs))
			}
			if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
				t.Errorf("policyTypes %v, want [Ingress]", np.Spec.PolicyTypes)
			}
			pod := dep.Spec.Template.Labels
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod)) {
				t.Fatalf("the NetworkPolicy's podSelector %v does not select mcp-authz's pods %v", np.Spec.PodSelector, pod)
			}
			// The shipped Envoy's pods must carry the labels the policy admits.
			if envoy != nil && !labels.SelectorFromSet(envoyPod.labels).Matches(labels.Set(envoy.Spec.Template.Labels)) {
				t.Errorf("the Envoy pods are labelled %v, the checks assume %v", envoy.Spec.Template.Labels, envoyPod.labels)
			}
			for _, c := range tt.checks {
				if got := admits(t, &np, pod, c.from, c.port); got != c.want {
					t.Errorf("%s (%+v to :%d): admitted %v, want %v", c.name, c.from, c.port, got, c.want)
				}
			}
		})
	}
}

func chartRender(values ...string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		t.Helper()
		out, err := helmTemplate(t, "mcp-authz", "mcp-authz", values...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}
