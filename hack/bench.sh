#!/usr/bin/env bash
# make bench: Go benchmarks of every hot path (-benchmem); ghz against the
# real ext_authz server and, in the same run, a no-op ext_authz server that
# answers OK without looking; hey (HTTP) through front -> authz -> router ->
# upstream against the upstream alone; the router scenario of
# hack/bench-router.sh (10 go-sdk upstreams, calls and 4,000 clients, in
# MCP 2025-11-25 with sessions and in 2026-07-28 stateless).
# Then one summary, every figure beside
# its baseline and target, also written to docs/benchmarks.md with the
# machine and the commands. Loopback only, every load bounded by -n.
# The servers' logs stay in bin/bench/*.log. It fails when a benchmark
# fails or a load run gets an answer other than OK; a target missed is
# reported, not a failure (the figures depend on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${GHZ:?run it through make bench}"
: "${HEY:?run it through make bench}"
: "${BENCHSTAT:?run it through make bench}"
N=${BENCH_N:-20000}        # requests per ghz run
HN=${BENCH_HTTP_N:-20000}  # requests per hey run
C=${BENCH_C:-50}           # concurrent workers of both
BENCHTIME=${BENCHTIME:-1s}
# BENCH_GO=0 skips the Go benchmarks (the load runs only).
# BENCH_BASE=REV also runs the Go benchmarks as built from REV, in this run,
# and prints them side by side with benchstat (bin/bench/benchstat.txt).
out=bin/bench
doc=${BENCH_DOC:-docs/benchmarks.md}
mkdir -p "$out"
rm -f "$out"/*
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  git worktree remove --force "$tmp/base" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=hack/benchlib.sh
. hack/benchlib.sh
started=$(date +%s)

# Go benchmarks. The two that run 1,000 sessions or fill 100,000 cache
# entries run once each, apart; everything else for BENCHTIME.
slow='^(BenchmarkConcurrentSessions|BenchmarkCacheMemory)$'
pkgs=$(go list ./... | grep -v -e /integration -e /cmd/ -e /hack/)
if [ "${BENCH_GO:-1}" = 1 ]; then
  echo "== Go benchmarks (-benchmem, -benchtime=$BENCHTIME)"
  record "go test -p 1 -run '^\$' -bench . -skip '$slow' -benchmem -count=3 -benchtime=$BENCHTIME \$(go list ./... | grep -v -e /integration -e /cmd/ -e /hack/)"
  go test -p 1 -run '^$' -bench . -skip "$slow" -benchmem -count=3 -benchtime="$BENCHTIME" $pkgs 2>&1 | tee "$out/go.txt" | grep -E '^(Benchmark|ok|FAIL|---|panic)' || true
  record "go test -run '^\$' -bench '^BenchmarkConcurrentSessions\$' -benchmem -benchtime=1x ./router"
  record "go test -run '^\$' -bench '^BenchmarkCacheMemory\$' -benchmem -benchtime=1x ./exchange"
  for p in router:BenchmarkConcurrentSessions exchange:BenchmarkCacheMemory; do
    go test -run '^$' -bench "^${p#*:}\$" -benchmem -benchtime=1x "./${p%%:*}" 2>&1 | tee -a "$out/go.txt" | grep -E '^(Benchmark|ok|FAIL|---|panic)' || true
  done
  if [ -n "${BENCH_BASE:-}" ]; then
    # The hot paths again beside the same benchmarks built from BENCH_BASE,
    # interleaved so that both see the same machine (hack/benchab.sh).
    echo
    record "BENCH_BASE=$BENCH_BASE hack/benchab.sh  # base and new test binaries alternated, then benchstat"
    hack/benchab.sh
  fi
else
  touch "$out/go.txt"  # BENCH_GO=0: the load runs only
fi

echo
echo "== ghz: Check over gRPC, real mcp-authz vs the no-op baseline (n=$N, c=$C)"
go build -o bin/noopauthz ./hack/noopauthz
go build -o bin/benchmcp ./hack/benchmcp
idp_port=$(free_port); real_port=$(free_port); jwt_port=$(free_port); noop_port=$(free_port); up_port=$(free_port)

bin/devidp --config dev/realm.yaml --listen "127.0.0.1:$idp_port" >"$out/idp.log" 2>&1 &
pids+=($!)
bin/noopauthz --listen "127.0.0.1:$noop_port" &
pids+=($!)

cat >"$tmp/plain.yaml" <<EOF
authz: {listen: 127.0.0.1:$real_port}
log: {level: warn}
servers:
  - {name: mcp-test/kubernetes-mcp, prefix: kube_, url: "http://127.0.0.1:$up_port/mcp"}
policies:
  - {name: tool-list, cel: 'mcp.tool.name in ["pods_list", "namespaces_list"]'}
EOF
cat >"$tmp/jwt.yaml" <<EOF
authz: {listen: 127.0.0.1:$jwt_port}
log: {level: warn}
identity:
  issuers: [{issuerURL: "http://127.0.0.1:$idp_port/realms/mcp", audiences: [mcp-gateway]}]
exchange:
  tokenURL: http://127.0.0.1:$idp_port/realms/mcp/protocol/openid-connect/token
  clientID: mcp-gateway
  clientSecretFile: $PWD/dev/gateway-secret
servers:
  - {name: mcp-test/kubernetes-mcp, prefix: kube_, url: "http://127.0.0.1:$up_port/mcp"}
policies:
  - {name: tool-roles, cel: 'mcp.tool.name in token.resource_access[mcp.server].roles'}
EOF
bin/mcp-authz serve --config "$tmp/plain.yaml" 2>"$out/plain.log" &
pids+=($!)
wait_port "$idp_port"
bin/mcp-authz serve --config "$tmp/jwt.yaml" 2>"$out/jwt.log" &
pids+=($!)
wait_port "$real_port"; wait_port "$jwt_port"; wait_port "$noop_port"

token=$(curl -s -d grant_type=password -d client_id=mcp-cli -d username=alice -d password=alice \
  "http://127.0.0.1:$idp_port/realms/mcp/protocol/openid-connect/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# One tools/call of about 1 KiB, as Envoy's ext_authz filter sends it.
python3 - "$tmp" "$token" <<'PY'
import json, sys
tmp, token = sys.argv[1], sys.argv[2]
body = json.dumps({"jsonrpc": "2.0", "id": 42, "method": "tools/call",
                   "params": {"name": "kube_pods_list", "arguments": {"namespace": "default", "note": "x" * 900}}})
for name, extra in (("plain", {}), ("jwt", {"authorization": "Bearer " + token})):
    headers = {":authority": "mcp.example.com", ":method": "POST", ":path": "/mcp", ":scheme": "http",
               "content-type": "application/json", "content-length": str(len(body))}
    headers.update(extra)
    req = {"attributes": {"request": {"http": {"method": "POST", "path": "/mcp", "host": "mcp.example.com",
            "scheme": "http", "protocol": "HTTP/1.1", "headers": headers, "body": body}}}}
    json.dump(req, open(f"{tmp}/{name}.json", "w"))
PY

run_ghz() { # name port data
  record "ghz --insecure --call envoy.service.auth.v3.Authorization.Check -D $(basename "$3") -c $C -n $N --connections 2 -O json 127.0.0.1:PORT  # $1"
  # ghz's report repeats the request (alice's token in it): drop its options.
  "$GHZ" --insecure --call envoy.service.auth.v3.Authorization.Check -D "$3" \
    -c "$C" -n "$N" --connections 2 -O json "127.0.0.1:$2" |
    python3 -c 'import json, sys; r = json.load(sys.stdin); r.pop("options", None); json.dump(r, sys.stdout)' >"$out/ghz-$1.json"
}
run_ghz warmup "$jwt_port" "$tmp/jwt.json"   # warms the key and exchange caches
run_ghz noop "$noop_port" "$tmp/plain.json"
run_ghz check "$real_port" "$tmp/plain.json"
run_ghz check-jwt "$jwt_port" "$tmp/jwt.json"
rm -f "$out/ghz-warmup.json"

echo
echo "== hey: tools/call over HTTP, front -> authz -> router -> upstream vs the upstream alone (n=$HN, c=$C)"
# Two copies of the same go-sdk upstream (hack/benchmcp), so that each
# one's RSS and CPU belong to one run: one behind mcp-authz, one called
# directly. mcp-authz runs gateway, authz and router in one process, with
# identity, warm exchange and the Keycloak tool-roles CEL policy.
front_port=$(free_port); fauthz_port=$(free_port); router_port=$(free_port)
upf_port=$(free_port); upd_port=$(free_port)
bin/benchmcp --listen "127.0.0.1:$upf_port" 2>"$out/upf.log" &
upf_pid=$!; pids+=($upf_pid)
bin/benchmcp --listen "127.0.0.1:$upd_port" 2>"$out/upd.log" &
upd_pid=$!; pids+=($upd_pid)
cat >"$tmp/full.yaml" <<EOF
authz: {listen: 127.0.0.1:$fauthz_port}
gateway: {listen: 127.0.0.1:$front_port, upstream: "http://127.0.0.1:$router_port", authz: "127.0.0.1:$fauthz_port"}
router: {listen: 127.0.0.1:$router_port}
log: {level: warn}
identity:
  issuers: [{issuerURL: "http://127.0.0.1:$idp_port/realms/mcp", audiences: [mcp-gateway]}]
exchange:
  tokenURL: http://127.0.0.1:$idp_port/realms/mcp/protocol/openid-connect/token
  clientID: mcp-gateway
  clientSecretFile: $PWD/dev/gateway-secret
servers:
  - {name: mcp-test/everything, prefix: ev_, url: "http://127.0.0.1:$upf_port/mcp"}
policies:
  - {name: tool-roles, cel: 'mcp.tool.name in token.resource_access[mcp.server].roles'}
EOF
bin/mcp-authz serve --config "$tmp/full.yaml" 2>"$out/full.log" &
full_pid=$!; pids+=($full_pid)
wait_port "$upf_port"; wait_port "$upd_port"; wait_port "$front_port"; wait_port "$router_port"

# initialize (and notifications/initialized) on url; prints the session id.
open_session() {
  local url=$1 sid
  sid=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
    "$url" | tr -d '\r' | awk 'tolower($1) == "mcp-session-id:" {print $2}')
  if [ -z "$sid" ]; then echo "bench: initialize at $url gave no session" >&2; exit 1; fi
  curl -sf -o /dev/null -H "Authorization: Bearer $token" -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-06-18' \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$url"
  echo "$sid"
}
# One session per worker, as C clients would have: a session refuses a
# request whose id is already in flight on it, and the body is fixed. So
# C hey processes of one worker each, on their own session, started at once.
front_sids=(); direct_sids=()
for _ in $(seq "$C"); do
  front_sids+=("$(open_session "http://127.0.0.1:$front_port/mcp")")
  direct_sids+=("$(open_session "http://127.0.0.1:$upd_port/mcp")")
done
echo '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ev_echo","arguments":{"text":"hello"}}}' >"$tmp/call-front.json"
echo '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}' >"$tmp/call-direct.json"

run_hey() { # name n url body sessions-array-name server-pids...
  local name=$1 n=$(( $2 / C )) url=$3 body=$4 p i=0 t0 before=() hey_pids=()
  local -n sids=$5
  shift 5
  [ "$name" = warmup ] || record "hey -n $n -c 1 -o csv -m POST -D $(basename "$body") -T application/json -A 'application/json, text/event-stream' -H 'Authorization: Bearer \$TOKEN' -H 'Mcp-Session-Id: \$SESSION_i' -H 'MCP-Protocol-Version: 2025-06-18' http://127.0.0.1:PORT/mcp  # $name: $C of these at once, i = 1..$C"
  for p in "$@"; do before+=("$(cpu "$p")"); done
  t0=$(date +%s.%N)
  for i in $(seq 0 $((C - 1))); do
    "$HEY" -n "$n" -c 1 -o csv -m POST -D "$body" -T application/json -A 'application/json, text/event-stream' \
      -H "Authorization: Bearer $token" -H "Mcp-Session-Id: ${sids[$i]}" -H 'MCP-Protocol-Version: 2025-06-18' \
      "$url" >"$out/hey-$name-$i.csv" &
    hey_pids+=($!)
  done
  wait "${hey_pids[@]}"
  echo "$t0 $(date +%s.%N) $((n * C))" >"$out/hey-$name.wall"
  i=0
  for p in "$@"; do
    echo "$p $(( $(cpu "$p") - before[i] )) $(hwm "$p")" >>"$out/hey-$name.proc"
    i=$((i + 1))
  done
}
run_hey warmup 2000 "http://127.0.0.1:$front_port/mcp" "$tmp/call-front.json" front_sids "$full_pid"
run_hey warmup 2000 "http://127.0.0.1:$upd_port/mcp" "$tmp/call-direct.json" direct_sids "$upd_pid"
rm -f "$out"/hey-warmup*
run_hey direct "$HN" "http://127.0.0.1:$upd_port/mcp" "$tmp/call-direct.json" direct_sids "$upd_pid"
run_hey front "$HN" "http://127.0.0.1:$front_port/mcp" "$tmp/call-front.json" front_sids "$full_pid" "$upf_pid"

stop() { kill "$@" 2>/dev/null || true; wait "$@" 2>/dev/null || true; }
stop "$full_pid" "$upf_pid" "$upd_pid"

echo
# The router scenario: 10 go-sdk upstreams x 20 tools, no identity, calls
# and BENCH_CLIENTS concurrent clients, MCP 2025-11-25 (sessions) and
# 2026-07-28 (stateless), through the stack vs direct (and the BENCH_BASE
# build beside it, when set).
# Its errors fail the run after the summary (benchreport.py finds them in
# the runs' reports too), so that the figures are printed beside them.
router_ok=1
BENCH_OUT="$out" BENCH_C="$C" hack/bench-router.sh || router_ok=0

echo
elapsed=$(( $(date +%s) - started ))
python3 hack/benchreport.py --out "$out" --doc "$doc" --clk-tck "$(getconf CLK_TCK)" --elapsed "$elapsed" \
  --n "$N" --http-n "$HN" --c "$C" --benchtime "$BENCHTIME" --clients "${BENCH_CLIENTS:-4000}"
if [ "$router_ok" = 0 ]; then
  echo "bench: the router scenario failed (see above and $out/router-*)" >&2; exit 1
fi
