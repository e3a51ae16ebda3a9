#!/usr/bin/env bash
# make bench's router scenario: 10 go-sdk upstreams x 20 tools
# (hack/benchmcp, one process holding all ten, so that its RSS is theirs),
# no identity, go-sdk clients (hack/benchload). Two parts, each run through
# front -> authz -> router (bin/mcp-authz, one process) and against the
# upstreams directly, in the same run:
#   calls:    BENCH_C clients on their own sessions make BENCH_ROUTER_N
#             tools/call (throughput, p50/p99, CPU of mcp-authz per call),
#             then one client makes BENCH_ROUTER_N1 (the latency added when
#             nothing is saturated);
#   sessions: BENCH_CLIENTS clients at once each initialize, list tools and
#             call one tool (errors, peak RSS of mcp-authz and of the
#             upstream process, upstream sessions opened).
# Each part gets fresh processes. BENCH_BASE=REV runs the same with
# bin/mcp-authz as built from REV, in this run (label "base"). Writes
# $out/router-*.json, *.proc, *.rss and *.sessions for hack/benchreport.py.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bin/bench}
N=${BENCH_ROUTER_N:-20000}
N1=${BENCH_ROUTER_N1:-3000}
C=${BENCH_C:-50}
CLIENTS=${BENCH_CLIENTS:-4000}
mkdir -p "$out"
rm -f "$out"/router-*
tmp=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  git worktree remove --force "$tmp/base" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# shellcheck source=hack/benchlib.sh
. hack/benchlib.sh

go build -o bin/benchmcp ./hack/benchmcp
go build -o bin/benchload ./hack/benchload
bins=("new:bin/mcp-authz")
if [ -n "${BENCH_BASE:-}" ]; then
  base_rev=$(git rev-parse --verify "$BENCH_BASE^{commit}")
  git worktree add --detach "$tmp/base" "$base_rev" >/dev/null
  (cd "$tmp/base" && go build -o "$tmp/mcp-authz-base" ./cmd/mcp-authz)
  git worktree remove --force "$tmp/base"
  bins+=("base:$tmp/mcp-authz-base")
  echo "base $BENCH_BASE $base_rev" >"$out/router-base.rev"
fi

# upstreams NAME: one benchmcp process with 10 servers of 20 tools; sets
# ups_pid and ups_ports.
upstreams() {
  local addrs="" p
  ups_ports=()
  for _ in $(seq 10); do
    p=$(free_port); ups_ports+=("$p"); addrs+="${addrs:+,}127.0.0.1:$p"
  done
  bin/benchmcp --tools 20 --listen "$addrs" 2>"$out/router-$1.log" &
  ups_pid=$!; pids+=($ups_pid)
  for p in "${ups_ports[@]}"; do wait_port "$p"; done
}
# authz BIN UPSTREAM-PORTS...: mcp-authz (front, authz, router) over them,
# no identity, every tool allowed; sets authz_pid and front_url.
authz() {
  local bin=$1 i=0 p front_port fauthz_port router_port
  shift
  front_port=$(free_port); fauthz_port=$(free_port); router_port=$(free_port)
  {
    echo "authz: {listen: 127.0.0.1:$fauthz_port}"
    echo "gateway: {listen: 127.0.0.1:$front_port, upstream: \"http://127.0.0.1:$router_port\", authz: \"127.0.0.1:$fauthz_port\"}"
    echo "router: {listen: 127.0.0.1:$router_port}"
    echo "log: {level: warn}"
    echo "servers:"
    for p in "$@"; do
      echo "  - {name: bench/s$i, prefix: s${i}_, url: \"http://127.0.0.1:$p/mcp\"}"
      i=$((i + 1))
    done
    echo "policies:"
    echo "  - {name: allow-all, cel: 'true'}"
  } >"$tmp/router.yaml"
  "$bin" serve --config "$tmp/router.yaml" 2>>"$out/router-authz.log" &
  authz_pid=$!; pids+=($authz_pid)
  wait_port "$front_port"; wait_port "$router_port"
  front_url="http://127.0.0.1:$front_port/mcp"
}
# targets: client i calls tool_(i mod 20) of server i mod 10, through the
# front (prefixed) or directly.
front_targets() {
  local t="" i
  for i in $(seq 0 19); do t+="${t:+,}$front_url=s$((i % 10))_tool_$(printf %02d "$i")"; done
  echo "$t"
}
direct_targets() {
  local t="" i
  for i in $(seq 0 19); do t+="${t:+,}http://127.0.0.1:${ups_ports[$((i % 10))]}/mcp=tool_$(printf %02d "$i")"; done
  echo "$t"
}
# load NAME ARGS... (pids to measure after --): benchload, CPU ticks and
# peak RSS (sampled every 100 ms) of each pid.
load() {
  local name=$1 a=() p before=() peak=() drv i
  shift
  while [ "$1" != -- ]; do a+=("$1"); shift; done
  shift
  for p in "$@"; do before+=("$(cpu "$p")"); peak+=(0); done
  bin/benchload "${a[@]}" >"$out/router-$name.json" 2>"$out/router-$name.err" &
  drv=$!
  while kill -0 "$drv" 2>/dev/null; do
    i=0
    for p in "$@"; do
      r=$(rss "$p"); [ "$r" -gt "${peak[i]}" ] && peak[i]=$r
      i=$((i + 1))
    done
    sleep 0.1
  done
  if ! wait "$drv"; then
    echo "bench: benchload $name had errors:" >&2; head -c 2000 "$out/router-$name.json" >&2
    # The build under test must get no error; the baseline's are reported.
    [ "$strict" = 1 ] && exit 1
  fi
  i=0
  for p in "$@"; do
    echo "$p $(( $(cpu "$p") - before[i] )) ${peak[i]}" >>"$out/router-$name.proc"
    i=$((i + 1))
  done
}
stats() { curl -sf "http://127.0.0.1:${ups_ports[0]}/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"])'; }

record "bin/benchmcp --tools 20 --listen ADDR1,...,ADDR10  # 10 servers x 22 tools, one process; twice: behind mcp-authz, and direct"
record "bin/mcp-authz serve --config router.yaml  # front, authz, router; no identity; servers bench/s0..s9, prefix sN_; policy allow-all (cel: 'true')"
record "bin/benchload -mode call -c $C -n $N -targets URL=TOOL,...  # direct, then through the front; client i calls tool_(i%20) of server i%10"
record "bin/benchload -mode call -c 1 -n $N1 -targets URL=TOOL,...  # one client, direct then through the front: the latency added when nothing is saturated"
record "bin/benchload -mode sessions -clients $CLIENTS -ramp 200 -hold 3s -targets ...  # each client: initialize, tools/list, one tools/call (200 at a time), all sessions held at once; fresh processes"
for entry in "${bins[@]}"; do
  label=${entry%%:*}; bin=${entry#*:}
  strict=0; [ "$label" = new ] && strict=1
  echo "== router scenario ($label): 10 go-sdk upstreams x 20 tools, no identity; calls (n=$N, c=$C)"
  upstreams "$label-up-front"; front_ups=$ups_pid; front_ports=("${ups_ports[@]}")
  authz "$bin" "${front_ports[@]}"
  upstreams "$label-up-direct"; direct_ups=$ups_pid
  direct=$(direct_targets)
  ups_ports=("${front_ports[@]}"); front=$(front_targets)
  bin/benchload -mode call -c "$C" -n 2000 -targets "$front" >/dev/null
  bin/benchload -mode call -c "$C" -n 2000 -targets "$direct" >/dev/null
  load "$label-direct" -mode call -c "$C" -n "$N" -targets "$direct" -- "$direct_ups"
  load "$label-front" -mode call -c "$C" -n "$N" -targets "$front" -- "$authz_pid" "$front_ups"
  load "$label-direct1" -mode call -c 1 -n "$N1" -targets "$direct" -- "$direct_ups"
  load "$label-front1" -mode call -c 1 -n "$N1" -targets "$front" -- "$authz_pid" "$front_ups"
  stop_all

  echo "== router scenario ($label): $CLIENTS go-sdk clients at once, each lists tools and calls one"
  upstreams "$label-sess-up-front"; front_ups=$ups_pid; front_ports=("${ups_ports[@]}")
  authz "$bin" "${front_ports[@]}"
  front=$(front_targets)
  s0=$(stats)
  load "$label-sess-front" -mode sessions -clients "$CLIENTS" -ramp 200 -hold 3s -targets "$front" -- "$authz_pid" "$front_ups"
  echo "$(( $(stats) - s0 ))" >"$out/router-$label-sess-front.sessions"
  stop_all
  upstreams "$label-sess-up-direct"; direct_ups=$ups_pid
  direct=$(direct_targets)
  s0=$(stats)
  load "$label-sess-direct" -mode sessions -clients "$CLIENTS" -ramp 200 -hold 3s -targets "$direct" -- "$direct_ups"
  echo "$(( $(stats) - s0 ))" >"$out/router-$label-sess-direct.sessions"
  stop_all
done
