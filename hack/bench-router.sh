#!/usr/bin/env bash
# make bench's router scenario: 10 go-sdk upstreams x 20 tools
# (hack/benchmcp, one process holding all ten, so that its RSS is theirs),
# no identity, go-sdk clients (hack/benchload). Two protocol generations
# (BENCH_ROUTER_SCENARIOS, default "2025 2026"), two parts each, each run
# through front -> authz -> router (bin/mcp-authz, one process) and against
# the upstreams directly, in the same run:
#   2025: clients and upstreams speak 2025-11-25, with sessions.
#     calls:    BENCH_C clients on their own sessions make BENCH_ROUTER_N
#               tools/call (throughput, p50/p99, CPU of mcp-authz per call),
#               then one client makes BENCH_ROUTER_N1 (the latency added
#               when nothing is saturated);
#     sessions: BENCH_CLIENTS clients at once each initialize, list tools and
#               call one tool (errors, peak RSS of mcp-authz and of the
#               upstream process, upstream sessions opened).
#   2026: clients and upstreams (benchmcp -stateless) speak 2026-07-28,
#     stateless: no session anywhere.
#     calls:    as above, BENCH_C callers, BENCH_ROUTER_N tools/call; every
#               one must reach the upstream as a 2026-07-28 tools/call;
#     callers:  BENCH_CLIENTS callers each discover, list tools and call one
#               tool, then all call once more at the same moment (errors,
#               peak RSS of mcp-authz and of the upstream process).
# Each part gets fresh processes. BENCH_BASE=REV runs the same with
# bin/mcp-authz as built from REV, in this run (label "base"). Writes
# $out/router-*.json, *.proc, *.sessions and *.calls26 for
# hack/benchreport.py. Any error of the build under test fails the run (exit
# 1), once every part has run and written its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bin/bench}
N=${BENCH_ROUTER_N:-20000}
N1=${BENCH_ROUTER_N1:-3000}
C=${BENCH_C:-50}
CLIENTS=${BENCH_CLIENTS:-4000}
SCENARIOS=${BENCH_ROUTER_SCENARIOS:-2025 2026}
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

# upstreams NAME [FLAGS...]: one benchmcp process with 10 servers of 20
# tools (FLAGS: -stateless for 2026-07-28); sets ups_pid and ups_ports.
upstreams() {
  local addrs="" p name=$1
  shift
  ups_ports=()
  for _ in $(seq 10); do
    p=$(free_port); ups_ports+=("$p"); addrs+="${addrs:+,}127.0.0.1:$p"
  done
  bin/benchmcp --tools 20 "$@" --listen "$addrs" 2>"$out/router-$name.log" &
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
    # Either way the other parts still run, so that every figure is there.
    [ "$strict" = 1 ] && failed=1
  fi
  i=0
  for p in "$@"; do
    echo "$p $(( $(cpu "$p") - before[i] )) ${peak[i]}" >>"$out/router-$name.proc"
    i=$((i + 1))
  done
}
# warm ARGS...: a warm-up run of benchload, not measured; its errors fail
# the build under test only.
warm() {
  if ! bin/benchload "$@" >"$out/router-warmup.json" 2>&1 && [ "$strict" = 1 ]; then
    echo "bench: a warm-up run had errors:" >&2; head -c 2000 "$out/router-warmup.json" >&2; failed=1
  fi
  rm -f "$out/router-warmup.json"
}
# stats PORT FIELD: a counter of the benchmcp process serving PORT (all
# its servers): sessions (opened), calls2026 (2026-07-28 tools/call) or
# posts (every POST).
stats() { curl -sf "http://127.0.0.1:$1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }
# counts PORT: the calls2026 and posts counters of the upstream at PORT.
counts() { echo "$(stats "$1" calls2026) $(stats "$1" posts)"; }
# calls26 NAME PORT BEFORE WANT: records the 2026-07-28 tools/call and the
# POSTs the upstream at PORT got since BEFORE (counts); the build under test
# must have passed on exactly WANT calls (none went another way, none was
# lost or repeated).
calls26() {
  local got posts now
  read -r got posts <<<"$(counts "$2")"
  read -r -a now <<<"$3"
  got=$((got - now[0])); posts=$((posts - now[1]))
  echo "$got $posts" >"$out/router-$1.calls26"
  if [ "$strict" = 1 ] && [ "$got" != "$4" ]; then
    echo "bench: $1: the upstream got $got tools/call as 2026-07-28 requests, want $4" >&2; failed=1
  fi
}

record "bin/benchmcp --tools 20 [-stateless] --listen ADDR1,...,ADDR10  # 10 servers x 22 tools, one process; twice: behind mcp-authz, and direct; -stateless for 2026-07-28"
record "bin/mcp-authz serve --config router.yaml  # front, authz, router; no identity; servers bench/s0..s9, prefix sN_; policy allow-all (cel: 'true')"
for scenario in $SCENARIOS; do
  case $scenario in
    2025)
      record "bin/benchload -protocol 2025-11-25 -mode call -c $C -n $N -targets URL=TOOL,...  # direct, then through the front; client i calls tool_(i%20) of server i%10"
      record "bin/benchload -protocol 2025-11-25 -mode call -c 1 -n $N1 -targets URL=TOOL,...  # one client, direct then through the front: the latency added when nothing is saturated"
      record "bin/benchload -protocol 2025-11-25 -mode sessions -clients $CLIENTS -ramp 200 -hold 3s -targets ...  # each client: initialize, tools/list, one tools/call (200 at a time), all sessions held at once; fresh processes" ;;
    2026)
      record "bin/benchload -protocol 2026-07-28 -mode call -c $C -n $N -targets URL=TOOL,...  # stateless upstreams (-stateless); direct, then through the front"
      record "bin/benchload -protocol 2026-07-28 -mode sessions -burst -clients $CLIENTS -ramp 200 -hold 1s -targets ...  # each caller: server/discover, tools/list, one tools/call (200 at a time); then all $CLIENTS call at once; fresh processes" ;;
    *) echo "bench: BENCH_ROUTER_SCENARIOS: unknown scenario $scenario (2025, 2026)" >&2; exit 1 ;;
  esac
done

# scenario2025 LABEL BIN: the 2025-11-25 scenario, with sessions.
scenario2025() {
  local label=$1 bin=$2 p=(-protocol 2025-11-25)
  echo "== router scenario ($label): MCP 2025-11-25 (sessions), 10 go-sdk upstreams x 20 tools, no identity; calls (n=$N, c=$C)"
  upstreams "$label-up-front"; front_ups=$ups_pid; front_ports=("${ups_ports[@]}")
  authz "$bin" "${front_ports[@]}"
  upstreams "$label-up-direct"; direct_ups=$ups_pid
  direct=$(direct_targets)
  ups_ports=("${front_ports[@]}"); front=$(front_targets)
  warm "${p[@]}" -mode call -c "$C" -n 2000 -targets "$front"
  warm "${p[@]}" -mode call -c "$C" -n 2000 -targets "$direct"
  load "$label-direct" "${p[@]}" -mode call -c "$C" -n "$N" -targets "$direct" -- "$direct_ups"
  load "$label-front" "${p[@]}" -mode call -c "$C" -n "$N" -targets "$front" -- "$authz_pid" "$front_ups"
  load "$label-direct1" "${p[@]}" -mode call -c 1 -n "$N1" -targets "$direct" -- "$direct_ups"
  load "$label-front1" "${p[@]}" -mode call -c 1 -n "$N1" -targets "$front" -- "$authz_pid" "$front_ups"
  stop_all

  echo "== router scenario ($label): $CLIENTS MCP 2025-11-25 clients at once, each lists tools and calls one"
  upstreams "$label-sess-up-front"; front_ups=$ups_pid; front_ports=("${ups_ports[@]}")
  authz "$bin" "${front_ports[@]}"
  front=$(front_targets)
  s0=$(stats "${ups_ports[0]}" sessions)
  load "$label-sess-front" "${p[@]}" -mode sessions -clients "$CLIENTS" -ramp 200 -hold 3s -targets "$front" -- "$authz_pid" "$front_ups"
  echo "$(( $(stats "${ups_ports[0]}" sessions) - s0 ))" >"$out/router-$label-sess-front.sessions"
  stop_all
  upstreams "$label-sess-up-direct"; direct_ups=$ups_pid
  direct=$(direct_targets)
  s0=$(stats "${ups_ports[0]}" sessions)
  load "$label-sess-direct" "${p[@]}" -mode sessions -clients "$CLIENTS" -ramp 200 -hold 3s -targets "$direct" -- "$direct_ups"
  echo "$(( $(stats "${ups_ports[0]}" sessions) - s0 ))" >"$out/router-$label-sess-direct.sessions"
  stop_all
}

# scenario2026 LABEL BIN: the 2026-07-28 scenario, stateless end to end.
scenario2026() {
  local label=$1 bin=$2 p=(-protocol 2026-07-28) front direct front_ports direct_ports c0 d0
  echo "== router scenario ($label): MCP 2026-07-28 (stateless), 10 go-sdk upstreams x 20 tools, no identity; calls (n=$N, c=$C)"
  upstreams "$label-s26-up-front" -stateless; front_ups=$ups_pid; front_ports=("${ups_ports[@]}")
  authz "$bin" "${front_ports[@]}"
  upstreams "$label-s26-up-direct" -stateless; direct_ups=$ups_pid; direct_ports=("${ups_ports[@]}")
  direct=$(direct_targets)
  ups_ports=("${front_ports[@]}"); front=$(front_targets)
  warm "${p[@]}" -mode call -c "$C" -n 2000 -targets "$front"
  warm "${p[@]}" -mode call -c "$C" -n 2000 -targets "$direct"
  d0=$(counts "${direct_ports[0]}")
  load "$label-s26-direct" "${p[@]}" -mode call -c "$C" -n "$N" -targets "$direct" -- "$direct_ups"
  calls26 "$label-s26-direct" "${direct_ports[0]}" "$d0" "$N"
  c0=$(counts "${front_ports[0]}")
  load "$label-s26-front" "${p[@]}" -mode call -c "$C" -n "$N" -targets "$front" -- "$authz_pid" "$front_ups"
  calls26 "$label-s26-front" "${front_ports[0]}" "$c0" "$N"
  stop_all

  echo "== router scenario ($label): $CLIENTS MCP 2026-07-28 callers, each lists tools and calls one, then all call at once"
  upstreams "$label-s26c-up-front" -stateless; front_ups=$ups_pid; front_ports=("${ups_ports[@]}")
  authz "$bin" "${front_ports[@]}"
  front=$(front_targets)
  c0=$(counts "${front_ports[0]}")
  load "$label-s26-conc-front" "${p[@]}" -mode sessions -burst -clients "$CLIENTS" -ramp 200 -hold 1s -targets "$front" -- "$authz_pid" "$front_ups"
  calls26 "$label-s26-conc-front" "${front_ports[0]}" "$c0" $((2 * CLIENTS))
  stop_all
  upstreams "$label-s26c-up-direct" -stateless; direct_ups=$ups_pid; direct_ports=("${ups_ports[@]}")
  direct=$(direct_targets)
  d0=$(counts "${direct_ports[0]}")
  load "$label-s26-conc-direct" "${p[@]}" -mode sessions -burst -clients "$CLIENTS" -ramp 200 -hold 1s -targets "$direct" -- "$direct_ups"
  calls26 "$label-s26-conc-direct" "${direct_ports[0]}" "$d0" $((2 * CLIENTS))
  stop_all
}

failed=0
for entry in "${bins[@]}"; do
  label=${entry%%:*}; bin=${entry#*:}
  strict=0; [ "$label" = new ] && strict=1
  for scenario in $SCENARIOS; do "scenario$scenario" "$label" "$bin"; done
done
if [ "$failed" = 1 ]; then
  echo "bench: the router scenario had errors (above)" >&2; exit 1
fi
