#!/usr/bin/env bash
# specmethods.sh GIT_DIR REVISION...: the methods of each revision of the MCP
# schema (schema/<revision>/schema.ts of the specification repository at
# GIT_DIR's HEAD), one "revision method direction" line each, sorted.
# direction is the union of the schema that carries the method:
# client-request, client-notification, server-request, server-notification,
# or input-request (2026-07-28's InputRequest, sent inside an
# InputRequiredResult rather than as a JSON-RPC request). A method of two
# unions (ping, notifications/cancelled...) has a line for each.
#
# It writes mcpparse/testdata/methods.txt:
#   hack/specmethods.sh /path/to/modelcontextprotocol.git 2025-11-25 2026-07-28
set -euo pipefail
git_dir=$1
shift
for rev in "$@"; do
  git --git-dir="$git_dir" show "HEAD:schema/$rev/schema.ts" | awk -v rev="$rev" '
    # interface X ... method: "m": X is the type of method m.
    /^export interface [A-Za-z]+/ { name = $3; sub(/[^A-Za-z].*/, "", name) }
    /^  method: "/ { m = $2; gsub(/[";]/, "", m); method[name] = m }
    # export type ClientRequest = | A | B ...; (possibly on one line)
    /^export type (Client|Server|Input)(Request|Notification) =/ {
      union = $3; collecting = 1
    }
    collecting {
      line = $0; sub(/^export type [A-Za-z]+ =/, "", line)
      n = split(line, parts, /[|; \t]+/)
      for (i = 1; i <= n; i++) if (parts[i] != "") members[union] = members[union] " " parts[i]
      if ($0 ~ /;/) collecting = 0
    }
    END {
      dir["ClientRequest"] = "client-request"; dir["ClientNotification"] = "client-notification"
      dir["ServerRequest"] = "server-request"; dir["ServerNotification"] = "server-notification"
      dir["InputRequest"] = "input-request"
      for (u in members) {
        n = split(members[u], types, " ")
        for (i = 1; i <= n; i++) {
          if (!(types[i] in method)) { print "specmethods: no method for " types[i] > "/dev/stderr"; exit 1 }
          print rev, method[types[i]], dir[u]
        }
      }
    }'
done | LC_ALL=C sort
