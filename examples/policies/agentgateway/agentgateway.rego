# The Rego twin of agentgateway.cel: anyone may call get_me; only the admin
# user may call delete_repository. Every prompt and resource request, and any
# other method for a server, is denied. Requests for no server (initialize,
# tools/list, ping, notifications) are left to other policies.
package mcp.authz

default allow := false

targeted := {"tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe"}

allow if {
	object.get(input.mcp, "server", "") == ""
	not input.mcp.method in targeted
}

allow if {
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "get_me"
}

allow if {
	input.mcp.method == "tools/call"
	input.identity.sub == "admin"
	input.mcp.tool.name == "delete_repository"
}
