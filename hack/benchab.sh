#!/usr/bin/env bash
# benchab.sh: the Go benchmarks of this tree beside the same benchmarks built
# from BENCH_BASE (a commit, tag or branch), interleaved so that both see the
# same machine: each package's two test binaries run one after the other,
# ROUNDS times, the order swapped every round. A loaded or noisy machine then
# slows both alike, and benchstat compares like with like.
#
#   BENCH_BASE=v0.1.0 hack/benchab.sh [PKG ...]     (make bench-ab BENCH_BASE=...)
#
# PKG defaults to the hot-path packages. Writes bin/bench/ab-{base,new}.txt
# and bin/bench/benchstat.txt, and prints the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_BASE:?set BENCH_BASE to the commit to compare with}"
: "${BENCHSTAT:?run it through make bench-ab}"
ROUNDS=${BENCH_ROUNDS:-6}
BENCHTIME=${BENCHTIME:-1s}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./authz ./authz/envoy ./mcpparse ./policy ./identity ./exchange ./router ./registry)
slow='^(BenchmarkConcurrentSessions|BenchmarkCacheMemory)$'
out=bin/bench
mkdir -p "$out"
rm -f "$out"/ab-base.txt "$out"/ab-new.txt
tmp=$(mktemp -d)
cleanup() {
  git worktree remove --force "$tmp/base" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

base_rev=$(git rev-parse --verify "$BENCH_BASE^{commit}")
git worktree add --detach "$tmp/base" "$base_rev" >/dev/null
echo "== Go benchmarks, this tree (new) and $BENCH_BASE ($base_rev, base), interleaved, $ROUNDS rounds"
built=()
for p in "${pkgs[@]}"; do
  name=$(echo "${p#./}" | tr / _)
  if [ ! -d "$tmp/base/$p" ]; then
    echo "benchab: $p is not in $BENCH_BASE: new only" >&2
  elif (cd "$tmp/base" && go test -c -o "$tmp/base-$name.test" "$p") 2>"$tmp/build.log"; then
    :
  else
    echo "benchab: $p does not build at $BENCH_BASE (new only):" >&2; cat "$tmp/build.log" >&2
  fi
  go test -c -o "$tmp/new-$name.test" "$p"
  built+=("$p")
done

run() { # tree side pkg name
  local bin="$tmp/$2-$4.test"
  [ -x "$bin" ] || return 0
  (cd "$1/$3" && "$bin" -test.run '^$' -test.bench . -test.skip "$slow" -test.benchmem \
    -test.count 1 -test.benchtime "$BENCHTIME") >>"$out/ab-$2.txt" 2>&1 || echo "benchab: $2 $3 failed" >&2
}
for round in $(seq "$ROUNDS"); do
  for p in "${built[@]}"; do
    name=$(echo "${p#./}" | tr / _)
    if [ $((round % 2)) = 1 ]; then
      run "$tmp/base" base "$p" "$name"; run "$PWD" new "$p" "$name"
    else
      run "$PWD" new "$p" "$name"; run "$tmp/base" base "$p" "$name"
    fi
  done
  echo "round $round of $ROUNDS done"
done
"$BENCHSTAT" base="$out/ab-base.txt" new="$out/ab-new.txt" >"$out/benchstat.txt" 2>&1 || true
cat "$out/benchstat.txt"
