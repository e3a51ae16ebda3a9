#!/usr/bin/env bash
# make run: the whole of mcp-authz on this machine, on loopback only.
#   dev provider (Keycloak-shaped)  127.0.0.1:8180  realm mcp
#   server-everything               127.0.0.1:8090  (hack/loopback.mjs)  mcp-test/everything
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

# Every port is ours: something already listening (an earlier make run?)
# would answer in place of what we start.
busy=()
for port in 8180 8090 8091 8080 9001 8081 9090; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy+=("$port"); fi
done
if ((${#busy[@]})); then
  echo "run: 127.0.0.1 port(s) ${busy[*]} already in use (an earlier make run?); stop what listens there first" >&2
  exit 1
fi

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

# server-everything reads only PORT and listens on every interface;
# hack/loopback.mjs binds its listener to 127.0.0.1 instead.
PORT=8090 node --import ./hack/loopback.mjs "$MCP_AUTHZ_EVERYTHING" streamableHttp >/dev/null 2>&1 &
pids+=($!)
wait_port 127.0.0.1:8090 server-everything

bin/benchmcp --listen 127.0.0.1:8091 >/dev/null 2>&1 &
pids+=($!)
wait_port 127.0.0.1:8091 benchmcp

bin/mcp-authz serve --config dev/mcp-authz.yaml &
pids+=($!)
wait_port 127.0.0.1:8080 mcp-authz

cat <<'MSG'

mcp-authz is running on 127.0.0.1 only:
  MCP endpoint  http://127.0.0.1:8080/mcp   (servers mcp-test/everything ev_, mcp-test/weather weather_)
  dev provider  http://127.0.0.1:8180/realms/mcp   (users alice, bob, mcp: password = user name)
  metrics       http://127.0.0.1:9090/metrics
Walk through it from another shell: README.md, Quick start.
Stop: Ctrl-C
MSG
wait -n "${pids[@]}"
