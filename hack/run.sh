#!/usr/bin/env bash
# make run: the whole of mcp-authz on this machine, on loopback only.
#   dev provider (Keycloak-shaped)  127.0.0.1:8180  realm mcp
#   server-everything               127.0.0.1:8090  (reads only PORT)  mcp-test/everything
#   hack/benchmcp                   127.0.0.1:8091                     mcp-test/weather
#   mcp-authz: front 8080, authz 9001, router 8081, metrics 9090
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MCP_AUTHZ_EVERYTHING:?run it through make run}"

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

wait_port() { # host:port name
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "run: $2 did not start on $1" >&2
  exit 1
}

# --keys: tokens survive a restart of make run (the file holds dev keys only).
mkdir -p .cache
bin/devidp --config dev/realm.yaml --listen 127.0.0.1:8180 --keys .cache/devidp-keys.json &
pids+=($!)
wait_port 127.0.0.1:8180 devidp

PORT=8090 node "$MCP_AUTHZ_EVERYTHING" streamableHttp >/dev/null 2>&1 &
pids+=($!)
wait_port 127.0.0.1:8090 server-everything

bin/benchmcp --listen 127.0.0.1:8091 >/dev/null 2>&1 &
pids+=($!)
wait_port 127.0.0.1:8091 benchmcp

bin/mcp-authz serve --config dev/mcp-authz.yaml &
pids+=($!)
wait_port 127.0.0.1:8080 mcp-authz

cat <<'MSG'

mcp-authz is running: MCP endpoint http://127.0.0.1:8080/mcp
  servers: mcp-test/everything (prefix ev_), mcp-test/weather (prefix weather_)

Get a token for user alice (dev provider, public client mcp-cli), open a session:
  TOKEN=$(curl -s -d grant_type=password -d client_id=mcp-cli -d username=alice -d password=alice \
    http://127.0.0.1:8180/realms/mcp/protocol/openid-connect/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  SID=$(curl -si http://127.0.0.1:8080/mcp -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' \
    | tr -d '\r' | sed -n 's/^mcp-session-id: //Ip')

Then list and call tools as the README's quick start shows. Metrics: http://127.0.0.1:9090/metrics
Stop: Ctrl-C
MSG
wait -n "${pids[@]}"
