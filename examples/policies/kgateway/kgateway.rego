# The Rego twin of kgateway.cel, written in the object form: allow is
# {"allow": bool, "reason": string}, and the reason reaches the decision log
# and the denial body.
package mcp.authz

default allow := {"allow": false, "reason": "tool_denied"}

allow := {"allow": true, "reason": "allowed"} if input.mcp.method != "tools/call"

allow := {"allow": true, "reason": "allowed"} if {
	input.identity.sub == "me"
	input.mcp.tool.target == "default/mcp-tool"
	input.mcp.tool.name == "convert_to_markdown"
}
