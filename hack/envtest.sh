#!/usr/bin/env bash
# envtest.sh builds the envtest assets (kube-apiserver, kubectl, etcd) from
# the pinned tools modules in hack/k8s and hack/etcd into a cache outside the
# repo, once, and prints that folder (use it as KUBEBUILDER_ASSETS). A second
# run only checks the stamp. Beside them it puts istio-crds.yaml, Istio's own
# CRDs from the istio.io/api Go module, for the manifest dry-run tests.
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

if have; then
	istio
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

"$tmp/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION" ||
	fail "kube-apiserver reports $("$tmp/kube-apiserver" --version), want Kubernetes $K8S_VERSION"
"$tmp/etcd" --version | grep -q "etcd Version: ${ETCD_VERSION#v}" ||
	fail "etcd reports a version other than $ETCD_VERSION"

for f in kube-apiserver kubectl etcd; do
	mv -f "$tmp/$f" "$dir/$f"
done
echo "$stamp" >"$dir/.stamp"
istio
echo "$dir"
