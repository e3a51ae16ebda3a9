package mcp.authz_test

import data.mcp.authz

call(sub, server, tool) := {
	"mcp": {"method": "tools/call", "server": server, "tool": {"name": tool, "target": server}},
	"identity": {"sub": sub},
	"token": {},
}

test_me_may_convert if authz.allow.allow with input as call("me", "default/mcp-tool", "convert_to_markdown")

test_others_may_not_convert if {
	d := authz.allow with input as call("you", "default/mcp-tool", "convert_to_markdown")
	d == {"allow": false, "reason": "tool_denied"}
}

test_other_server_denied if not authz.allow.allow with input as call("me", "other/mcp-tool", "convert_to_markdown")

test_other_tool_denied if not authz.allow.allow with input as call("me", "default/mcp-tool", "delete_everything")

test_listing_allowed if authz.allow.allow with input as {"mcp": {"method": "tools/list", "server": ""}, "identity": {}}

test_prompts_and_resources_denied if {
	every sub in ["me", "you"] {
		d := authz.allow with input as {"mcp": {"method": "prompts/get", "server": "default/mcp-tool", "prompt": {"name": "convert_to_markdown"}}, "identity": {"sub": sub}}
		d == {"allow": false, "reason": "tool_denied"}
		every method in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
			not authz.allow.allow with input as {"mcp": {"method": method, "server": "default/mcp-tool", "resource": {"uri": "file:///doc.md"}}, "identity": {"sub": sub}}
		}
	}
}
