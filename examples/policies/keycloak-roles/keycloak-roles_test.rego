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

request(method, target, token) := object.union(
	{"mcp": {"method": method, "server": server}, "identity": {"sub": "alice"}, "token": token},
	{"mcp": target},
)

alice_all := {"aud": server, "resource_access": {server: {"roles": ["pods_list", "prompt:summarize", "resource:k8s://pods"]}}}

bob := {"aud": server}

test_prompt_role_allows_prompt if authz.allow with input as request("prompts/get", {"prompt": {"name": "summarize"}}, alice_all)

test_missing_prompt_role_denies if not authz.allow with input as request("prompts/get", {"prompt": {"name": "troubleshoot"}}, alice_all)

test_tool_role_is_not_a_prompt_role if not authz.allow with input as request("prompts/get", {"prompt": {"name": "pods_list"}}, alice_all)

test_resource_role_allows_resource if {
	every method in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
		authz.allow with input as request(method, {"resource": {"uri": "k8s://pods"}}, alice_all)
	}
}

test_missing_resource_role_denies if not authz.allow with input as request("resources/read", {"resource": {"uri": "k8s://secrets"}}, alice_all)

test_no_roles_get_nothing if {
	not authz.allow with input as request("tools/call", {"tool": {"name": "pods_list", "target": server}}, bob)
	not authz.allow with input as request("prompts/get", {"prompt": {"name": "summarize"}}, bob)
	every method in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
		not authz.allow with input as request(method, {"resource": {"uri": "k8s://pods"}}, bob)
	}
}

test_other_method_for_a_server_denied if not authz.allow with input as request("completion/complete", {}, alice_all)

test_tools_call_for_no_server_denied if not authz.allow with input as {"mcp": {"method": "tools/call", "server": "", "tool": {"name": "pods_list"}}, "token": alice_all}

task(method, tool) := {"task": {"server": server, "tool": tool, "method": method}}

test_tool_role_allows_its_tasks if {
	every method in ["tasks/get", "tasks/update", "tasks/cancel", "tasks/result"] {
		authz.allow with input as request(method, task(method, "pods_list"), alice_all)
	}
}

test_tasks_of_another_tool_denied if not authz.allow with input as request("tasks/cancel", task("tasks/cancel", "pods_delete"), alice_all)

test_task_of_unknown_tool_denied if not authz.allow with input as request("tasks/get", task("tasks/get", ""), alice_all)

test_no_roles_get_no_tasks if not authz.allow with input as request("tasks/get", task("tasks/get", "pods_list"), bob)
