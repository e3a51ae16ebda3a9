#!/usr/bin/env bash
# make bench: Go benchmarks of every hot path (-benchmem), then ghz against
# the real ext_authz server and, in the same run, against a no-op ext_authz
# server that answers OK without looking. Loopback only, bounded by -n.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${GHZ:?run it through make bench}"
N=${BENCH_N:-20000}     # requests per ghz run
C=${BENCH_C:-50}        # concurrent workers
BENCHTIME=${BENCHTIME:-1s}
out=bin/bench
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: nothing listens on $1" >&2; exit 1
}

echo "== Go benchmarks (-benchmem, -benchtime=$BENCHTIME)"
pkgs=$(go list ./... | grep -v -e /integration -e /cmd/ -e /hack/)
go test -run '^$' -bench . -benchmem -benchtime="$BENCHTIME" $pkgs | tee "$out/go.txt" | grep -E '^(Benchmark|ok|FAIL|---)' || true

echo
echo "== ghz: Check over gRPC, real mcp-authz vs the no-op baseline (n=$N, c=$C)"
go build -o bin/noopauthz ./hack/noopauthz
idp_port=$(free_port); real_port=$(free_port); jwt_port=$(free_port); noop_port=$(free_port); up_port=$(free_port)

bin/devidp --config dev/realm.yaml --listen "127.0.0.1:$idp_port" >"$tmp/idp.log" 2>&1 &
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
bin/mcp-authz serve --config "$tmp/plain.yaml" 2>"$tmp/plain.log" &
pids+=($!)
wait_port "$idp_port"
bin/mcp-authz serve --config "$tmp/jwt.yaml" 2>"$tmp/jwt.log" &
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
  "$GHZ" --insecure --call envoy.service.auth.v3.Authorization.Check -D "$3" \
    -c "$C" -n "$N" --connections 2 -O json "127.0.0.1:$2" >"$out/ghz-$1.json"
}
run_ghz warmup "$jwt_port" "$tmp/jwt.json"   # warms the key and exchange caches
run_ghz noop "$noop_port" "$tmp/plain.json"
run_ghz check "$real_port" "$tmp/plain.json"
run_ghz check-jwt "$jwt_port" "$tmp/jwt.json"

python3 - "$out" <<'PY' | tee "$out/ghz.txt"
import json, sys
out = sys.argv[1]
def load(name):
    r = json.load(open(f"{out}/ghz-{name}.json"))
    lat = {d["percentage"]: d["latency"] / 1e6 for d in r["latencyDistribution"] or []}
    codes = r.get("statusCodeDistribution", {})
    return r["rps"], lat.get(50, 0), lat.get(99, 0), codes
noop = load("noop")
print(f"{'server':<34} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs no-op':>9}  status codes")
for label, name in (("no-op ext_authz (baseline)", "noop"),
                    ("mcp-authz Check, CEL", "check"),
                    ("mcp-authz Check, JWT+exchange+CEL", "check-jwt")):
    rps, p50, p99, codes = load(name)
    print(f"{label:<34} {rps:>10.0f} {p50:>8.3f} {p99:>8.3f} {rps / noop[0]:>8.0%}  {codes}")
PY
