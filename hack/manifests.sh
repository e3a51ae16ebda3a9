#!/usr/bin/env bash
# manifests.sh regenerates the deepcopy functions in api/ and the CRDs in
# manifests/crd/bases (mcp-authz's own) and manifests/crd/kuadrant (the
# MCPServerRegistration CRD shared with Kuadrant mcp-gateway, shipped apart so
# that installing mcp-authz never changes Kuadrant's), and their copy in the Helm chart, charts/mcp-authz/crds/, with
# the chart's copy of manifests/monitoring's alerts and dashboard)
# with the pinned controller-gen. With --check it regenerates
# into a scratch copy and fails if the committed files differ (drift).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cg=$("$root/hack/controller-gen.sh")

# The chart ships manifests/monitoring's alerts and dashboard as copies.
monitoring="prometheusrule.yaml mcp-authz-dashboard.json"

# kuadrant is the CRD that lives in manifests/crd/kuadrant, beside its kustomization.
kuadrant=mcp.kuadrant.io_mcpserverregistrations.yaml

generate() { # generate OUT_DIR: every CRD into OUT_DIR, then split as committed
	(cd "$root" && "$cg" object paths=./api/... &&
		"$cg" crd paths=./api/... output:crd:artifacts:config="$1")
	mkdir -p "$1/kuadrant"
	mv "$1/$kuadrant" "$1/kuadrant/$kuadrant"
}

if [[ ${1:-} != --check ]]; then
	scratch=$(mktemp -d)
	trap 'rm -rf "$scratch"' EXIT
	generate "$scratch"
	rm -f "$root"/manifests/crd/bases/*.yaml "$root"/charts/mcp-authz/crds/*.yaml
	cp "$scratch"/*.yaml "$root/manifests/crd/bases/"
	cp "$scratch/kuadrant/$kuadrant" "$root/manifests/crd/kuadrant/$kuadrant"
	cp "$scratch"/*.yaml "$scratch/kuadrant/$kuadrant" "$root/charts/mcp-authz/crds/"
	for f in $monitoring; do cp "$root/manifests/monitoring/$f" "$root/charts/mcp-authz/files/$f"; done
	echo "manifests.sh: regenerated api/**/zz_generated.deepcopy.go, manifests/crd/bases, charts/mcp-authz/crds and the chart's copy of the monitoring files"
	exit 0
fi

# Drift check: generate the CRDs into a scratch folder and the deepcopy files
# in place, then compare both with what git has.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
generate "$scratch"
status=0
if ! diff -ru "$root/manifests/crd/bases" "$scratch" --exclude kuadrant; then
	status=1
fi
if ! diff -u "$root/manifests/crd/kuadrant/$kuadrant" "$scratch/kuadrant/$kuadrant"; then
	status=1
fi
cp "$scratch/kuadrant/$kuadrant" "$scratch/"
if ! diff -ru "$root/charts/mcp-authz/crds" "$scratch" --exclude kuadrant; then
	status=1
fi
for f in $monitoring; do
	if ! diff -u "$root/manifests/monitoring/$f" "$root/charts/mcp-authz/files/$f"; then
		status=1
	fi
done
drift=$(cd "$root" && git status --porcelain -- ':(glob)api/**/zz_generated.deepcopy.go')
if [[ -n $drift ]]; then
	echo "$drift"
	status=1
fi
if [[ $status != 0 ]]; then
	echo "manifests.sh: generated files are out of date: run hack/manifests.sh and commit" >&2
fi
exit $status
