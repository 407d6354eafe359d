# METADATA
# description: |
#   The agent's tool policy, the middle ceiling: {mode: allow|deny, tools: [...]}.
#   A missing or malformed policy restricts nothing, as in the seed, so only a
#   well-formed policy can block a tool.
package agentauthz.tools

# tool_blocked(policy, tool): the policy forbids tool.
tool_blocked(policy, tool) if {
	well_formed(policy)
	policy.mode == "allow"
	not tool in policy.tools
}

tool_blocked(policy, tool) if {
	well_formed(policy)
	policy.mode == "deny"
	tool in policy.tools
}

well_formed(policy) if {
	policy.mode in {"allow", "deny"}
	is_array(policy.tools)
	every tool in policy.tools {
		is_string(tool)
	}
}
