#!/usr/bin/env bash
# envtest.sh builds the envtest assets (kube-apiserver, kubectl, etcd) from
# the pinned tools modules in hack/k8s and hack/etcd into a cache outside the
# repo, once, and prints that folder (use it as KUBEBUILDER_ASSETS). A second
# run only checks the stamp. Beside them it puts istio-crds.yaml, Istio's own
# CRDs from the istio.io/api Go module, and prometheus-operator-crds.yaml, the
# Prometheus Operator's ServiceMonitor and PrometheusRule CRDs from its Go
# module, for the manifest dry-run tests.
#
#   KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test ./kube/...
#
# MCP_AUTHZ_CACHE (default ~/.cache/mcp-authz) chooses the cache; the
# assets go to $MCP_AUTHZ_CACHE/k8s/bin. Everything it says goes to stderr,
# so stdout is the folder alone.
set -euo pipefail

export GOTOOLCHAIN=local
K8S_VERSION=v1.37.1
K8S_MINOR=37
ETCD_VERSION=v3.6.16
ISTIO_API_VERSION=v1.31.1
PROMETHEUS_OPERATOR_VERSION=v0.85.0

hack=$(cd "$(dirname "$0")" && pwd)
dir=${MCP_AUTHZ_CACHE:-$HOME/.cache/mcp-authz}/k8s/bin
stamp="kubernetes=$K8S_VERSION etcd=$ETCD_VERSION"

have() {
	[[ -x $dir/kube-apiserver && -x $dir/kubectl && -x $dir/etcd ]] &&
		[[ -f $dir/.stamp && $(<"$dir/.stamp") == "$stamp" ]]
}

fail() {
	echo "envtest.sh: $*" >&2
	exit 1
}

# istio installs Istio's CRDs (from the istio.io/api module) as istio-crds.yaml.
istio() {
	local want="$dir/istio-crds-$ISTIO_API_VERSION.yaml" src
	[[ -f $want ]] || {
		src=$(cd / && go mod download -json "istio.io/api@$ISTIO_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		[[ -n $src && -f $src/kubernetes/customresourcedefinitions.gen.yaml ]] ||
			fail "downloading istio.io/api@$ISTIO_API_VERSION failed"
		cp "$src/kubernetes/customresourcedefinitions.gen.yaml" "$want.tmp" && mv -f "$want.tmp" "$want"
	}
	ln -sf "$(basename "$want")" "$dir/istio-crds.yaml"
}

# prometheusOperator installs Prometheus Operator's ServiceMonitor and
# PrometheusRule CRDs, from its Go module, as prometheus-operator-crds.yaml.
prometheusOperator() {
	local want="$dir/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION.yaml" src
	[[ -f $want ]] || {
		src=$(cd / && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		src=$src/example/prometheus-operator-crd
		[[ -f $src/monitoring.coreos.com_servicemonitors.yaml && -f $src/monitoring.coreos.com_prometheusrules.yaml ]] ||
			fail "downloading prometheus-operator@$PROMETHEUS_OPERATOR_VERSION failed"
		{ cat "$src/monitoring.coreos.com_servicemonitors.yaml"; echo "---"; cat "$src/monitoring.coreos.com_prometheusrules.yaml"; } >"$want.tmp" &&
			mv -f "$want.tmp" "$want"
	}
	ln -sf "$(basename "$want")" "$dir/prometheus-operator-crds.yaml"
}

if have; then
	istio
	prometheusOperator
	echo "$dir"
	exit 0
fi

mkdir -p "$dir"
# Build beside the target and rename into place, so an interrupted build
# never leaves a half-written binary that looks installed.
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ldflags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$K8S_MINOR"
for cmd in kube-apiserver kubectl; do
	echo "envtest.sh: building $cmd $K8S_VERSION (minutes on a cold cache)" >&2
	(cd "$hack/k8s" && go build -trimpath -ldflags "$ldflags" -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd") ||
		fail "building $cmd $K8S_VERSION failed (is k8s.io/kubernetes@$K8S_VERSION served by the module proxy?)"
done

echo "envtest.sh: building etcd $ETCD_VERSION" >&2
(cd "$hack/etcd" && go build -trimpath -o "$tmp/etcd" go.etcd.io/etcd/server/v3) ||
	fail "building etcd $ETCD_VERSION failed"

# Read each version whole before matching: with pipefail, grep -q quitting at
# its first match can kill the writer with SIGPIPE and fail the pipeline.
got=$("$tmp/kube-apiserver" --version)
[[ $got == "Kubernetes $K8S_VERSION" ]] ||
	fail "kube-apiserver reports $got, want Kubernetes $K8S_VERSION"
got=$("$tmp/etcd" --version)
[[ $got == *"etcd Version: ${ETCD_VERSION#v}"* ]] ||
	fail "etcd reports $got, want $ETCD_VERSION"

for f in kube-apiserver kubectl etcd; do
	mv -f "$tmp/$f" "$dir/$f"
done
echo "$stamp" >"$dir/.stamp"
istio
prometheusOperator
echo "$dir"
