#!/usr/bin/env bash
# manifests.sh regenerates the deepcopy functions in api/ and the CRDs in
# manifests/crd/ (and their copy in the Helm chart, charts/mcp-authz/crds/, with
# the chart's copy of manifests/monitoring's alerts and dashboard)
# with the pinned controller-gen. With --check it regenerates
# into a scratch copy and fails if the committed files differ (drift).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cg=$("$root/hack/controller-gen.sh")

# The chart ships manifests/monitoring's alerts and dashboard as copies.
monitoring="prometheusrule.yaml mcp-authz-dashboard.json"

generate() { # generate OUT_CRD_DIR
	(cd "$root" && "$cg" object paths=./api/... &&
		"$cg" crd paths=./api/... output:crd:artifacts:config="$1")
}

if [[ ${1:-} != --check ]]; then
	generate manifests/crd/bases
	rm -f "$root"/charts/mcp-authz/crds/*.yaml
	cp "$root"/manifests/crd/bases/*.yaml "$root/charts/mcp-authz/crds/"
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
if ! diff -ru "$root/manifests/crd/bases" "$scratch"; then
	status=1
fi
if ! diff -ru "$root/charts/mcp-authz/crds" "$scratch"; then
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
