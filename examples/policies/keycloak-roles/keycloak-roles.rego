# Keycloak client roles, after Kuadrant mcp-gateway's Kubernetes MCP server
# guide: a request for a server is allowed when the exchanged token was
# issued for that server (aud) and carries a client role of that server for
# what the request targets:
#   tools/call                           the tool's name, or "tool:" + the tool
#   prompts/get                          "prompt:" + the prompt
#   resources/read|subscribe|unsubscribe "resource:" + the uri
#   tasks/get|update|cancel|result       the role of the tool whose call
#                                        created the task (mcp.task.tool)
#   logging/setLevel, roots/list_changed, tasks/list, subscriptions/listen
#                                        any role of the server (the router
#                                        asks per server of a session)
#
# A caller without roles gets nothing, and lists (the router filters them
# with this policy) show them nothing. Requests for no server (initialize,
# tools/list, ping, notifications) are left to other policies; any other
# method for a server is denied.
package mcp.authz

default allow := false

targeted := {
	"tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe",
	"tasks/get", "tasks/update", "tasks/cancel", "tasks/result",
}

resources := {"resources/read", "resources/subscribe", "resources/unsubscribe"}

allow if {
	object.get(input.mcp, "server", "") == ""
	not input.mcp.method in targeted
}

allow if {
	input.mcp.method == "tools/call"
	audience_is_server
	some role in [input.mcp.tool.name, concat("", ["tool:", input.mcp.tool.name])]
	role in roles
}

allow if {
	input.mcp.method == "prompts/get"
	audience_is_server
	concat("", ["prompt:", input.mcp.prompt.name]) in roles
}

allow if {
	input.mcp.method in resources
	audience_is_server
	concat("", ["resource:", input.mcp.resource.uri]) in roles
}

tasks := {"tasks/get", "tasks/update", "tasks/cancel", "tasks/result"}

allow if {
	input.mcp.method in tasks
	input.mcp.task.tool != ""
	audience_is_server
	some role in [input.mcp.task.tool, concat("", ["tool:", input.mcp.task.tool])]
	role in roles
}

# The router passes these to every server of a session, asking per server.
allow if {
	input.mcp.method in {"logging/setLevel", "notifications/roots/list_changed", "tasks/list", "subscriptions/listen"}
	audience_is_server
	count(roles) > 0
}

roles := r if {
	r := input.token.resource_access[input.mcp.server].roles
	is_array(r)
}

audience_is_server if input.token.aud == input.mcp.server

audience_is_server if {
	is_array(input.token.aud)
	input.mcp.server in input.token.aud
}
