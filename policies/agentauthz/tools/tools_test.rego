package agentauthz.tools_test

import data.agentauthz.tools

test_tool_policy_missing_allows_every_tool if {
	not tools.tool_blocked(null, "web_search")
}

test_tool_policy_allow_list_allows_listed if {
	not tools.tool_blocked({"mode": "allow", "tools": ["web_search"]}, "web_search")
}

test_tool_policy_allow_list_blocks_unlisted if {
	tools.tool_blocked({"mode": "allow", "tools": ["web_search"]}, "shell")
}

test_tool_policy_allow_empty_blocks_every_tool if {
	tools.tool_blocked({"mode": "allow", "tools": []}, "web_search")
}

test_tool_policy_deny_list_blocks_listed if {
	tools.tool_blocked({"mode": "deny", "tools": ["shell"]}, "shell")
	not tools.tool_blocked({"mode": "deny", "tools": ["shell"]}, "web_search")
}

test_tool_policy_malformed_allows_every_tool if {
	every policy in [
		{"mode": "block", "tools": ["shell"]},
		{"mode": "deny", "tools": "shell"},
		{"mode": "allow", "tools": [1]},
		{"tools": []},
		"deny",
	] {
		not tools.tool_blocked(policy, "shell")
	}
}
