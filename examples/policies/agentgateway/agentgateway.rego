# The Rego twin of agentgateway.cel: anyone may call get_me; only the admin
# user may call delete_repository. Methods other than tools/call are left to
# other policies.
package mcp.authz

default allow := false

allow if input.mcp.method != "tools/call"

allow if input.mcp.tool.name == "get_me"

allow if {
	input.identity.sub == "admin"
	input.mcp.tool.name == "delete_repository"
}
