#!/usr/bin/env bash
# controller-gen.sh builds the pinned controller-gen (hack/controller-gen) into
# the tool cache once and prints its path.
set -euo pipefail

export GOTOOLCHAIN=local
VERSION=v0.23.0

hack=$(cd "$(dirname "$0")" && pwd)
dir=${MCP_AUTHZ_CACHE:-$HOME/.cache/mcp-authz}/k8s/bin
bin=$dir/controller-gen-$VERSION

if [[ ! -x $bin ]]; then
	mkdir -p "$dir"
	echo "controller-gen.sh: building controller-gen $VERSION" >&2
	(cd "$hack/controller-gen" && go build -trimpath -o "$bin.tmp" sigs.k8s.io/controller-tools/cmd/controller-gen) || {
		rm -f "$bin.tmp"
		echo "controller-gen.sh: building controller-gen $VERSION failed" >&2
		exit 1
	}
	mv -f "$bin.tmp" "$bin"
fi
echo "$bin"
