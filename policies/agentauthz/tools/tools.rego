# METADATA
# description: |
#   The agent's tool policy, the middle ceiling: {mode: allow|deny, tools: [...]}.
#   A missing or malformed policy restricts nothing, as in the seed, so only a
#   well-formed policy can block a tool.
package agentauthz.tools

# tool_blocked(policy, tool): the policy forbids tool.
# The mode and membership tests come first: they are cheap and usually
# decide, so the full well_formed walk runs only for a policy that blocks.
tool_blocked(policy, tool) if {
	policy.mode == "allow"
	not tool in policy.tools
	well_formed(policy)
}

tool_blocked(policy, tool) if {
	policy.mode == "deny"
	tool in policy.tools
	well_formed(policy)
}

well_formed(policy) if {
	policy.mode in {"allow", "deny"}
	is_array(policy.tools)
	every tool in policy.tools {
		is_string(tool)
	}
}

# narrows(new, old): every tool new permits, old permits too, so replacing
# old by new takes tools away and never hands one out. A null or malformed
# old policy restricts nothing; a null new policy permits everything.
narrows(_, old) if not restricts(old)

narrows(new, old) if {
	new.mode == "allow"
	well_formed(new)
	restricts(old)
	every tool in new.tools {
		not tool_blocked(old, tool)
	}
}

narrows(new, old) if {
	new.mode == "deny"
	well_formed(new)
	old.mode == "deny"
	well_formed(old)
	every tool in old.tools {
		tool in new.tools
	}
}

restricts(policy) if well_formed(policy)
