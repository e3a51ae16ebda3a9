# The Rego twin of kgateway.cel, written in the object form: allow is
# {"allow": bool, "reason": string}, and the reason reaches the decision log
# and the denial body. Every prompt and resource request, and any other
# method for a server, is denied; requests for no server are left to other
# policies.
package mcp.authz

default allow := {"allow": false, "reason": "tool_denied"}

targeted := {"tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe"}

allow := {"allow": true, "reason": "allowed"} if {
	object.get(input.mcp, "server", "") == ""
	not input.mcp.method in targeted
}

allow := {"allow": true, "reason": "allowed"} if {
	input.mcp.method == "tools/call"
	input.identity.sub == "me"
	input.mcp.tool.target == "default/mcp-tool"
	input.mcp.tool.name == "convert_to_markdown"
}
