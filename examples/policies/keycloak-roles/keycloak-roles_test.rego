package mcp.authz_test

import data.mcp.authz

server := "mcp-test/kubernetes-mcp"

call(tool, token) := {
	"mcp": {"method": "tools/call", "server": server, "tool": {"name": tool, "target": server}},
	"identity": {"sub": "alice"},
	"token": token,
}

alice := {"aud": server, "resource_access": {server: {"roles": ["pods_list", "tool:pods_log"]}}}

test_role_allows_tool if authz.allow with input as call("pods_list", alice)

test_tool_prefixed_role_allows_tool if authz.allow with input as call("pods_log", alice)

test_missing_role_denies if not authz.allow with input as call("pods_delete", alice)

test_audience_list_allows if {
	token := object.union(alice, {"aud": ["other", server]})
	authz.allow with input as call("pods_list", token)
}

test_wrong_audience_denies if {
	token := object.union(alice, {"aud": "other"})
	not authz.allow with input as call("pods_list", token)
}

test_role_of_other_server_denies if {
	token := {"aud": server, "resource_access": {"other": {"roles": ["pods_list"]}}}
	not authz.allow with input as call("pods_list", token)
}

test_no_token_denies if not authz.allow with input as call("pods_list", {})

test_other_methods_pass if authz.allow with input as {"mcp": {"method": "tools/list", "server": ""}, "token": {}}
