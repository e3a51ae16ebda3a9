# Keycloak client roles, after Kuadrant mcp-gateway's Kubernetes MCP server
# guide: a tools/call is allowed when the exchanged token was issued for the
# target server (aud) and carries a client role of that server named after
# the tool, or "tool:" followed by the tool.
#
# This policy constrains tools/call only: other methods (initialize,
# tools/list, ping, notifications, prompts, resources) are left to other
# policies. tools/list still shows only what the caller may call, because
# the router filters it by evaluating each tool as a tools/call.
package mcp.authz

default allow := false

allow if input.mcp.method != "tools/call"

allow if {
	input.mcp.method == "tools/call"
	audience_is_server
	some role in [input.mcp.tool.name, concat("", ["tool:", input.mcp.tool.name])]
	role in input.token.resource_access[input.mcp.server].roles
}

audience_is_server if input.token.aud == input.mcp.server

audience_is_server if {
	is_array(input.token.aud)
	input.mcp.server in input.token.aud
}
