package mcp.authz_test

import data.mcp.authz

call(sub, tool) := {
	"mcp": {"method": "tools/call", "server": "default/github", "tool": {"name": tool, "target": "default/github"}},
	"identity": {"sub": sub},
	"token": {},
}

test_anyone_may_call_get_me if authz.allow with input as call("bob", "get_me")

test_admin_may_delete if authz.allow with input as call("admin", "delete_repository")

test_others_may_not_delete if not authz.allow with input as call("bob", "delete_repository")

test_other_tools_denied if not authz.allow with input as call("admin", "create_repository")

test_anonymous_get_me if authz.allow with input as {"mcp": {"method": "tools/call", "tool": {"name": "get_me"}}, "identity": {}}

resource(method, sub) := {
	"mcp": {"method": method, "server": "default/github", "resource": {"uri": "repo://octo/hello"}},
	"identity": {"sub": sub},
	"token": {},
}

test_prompts_denied if {
	every sub in ["admin", "bob"] {
		not authz.allow with input as {"mcp": {"method": "prompts/get", "server": "default/github", "prompt": {"name": "get_me"}}, "identity": {"sub": sub}}
	}
}

test_resources_denied if {
	every sub in ["admin", "bob"] {
		every method in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
			not authz.allow with input as resource(method, sub)
		}
	}
}

test_listing_allowed if authz.allow with input as {"mcp": {"method": "tools/list", "server": ""}, "identity": {}}
