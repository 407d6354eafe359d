# METADATA
# description: |
#   The runtime decision (ability "authorize", POST /v1/authorize): may the
#   caller make input.agent perform input.action (optionally with input.tool)?
#   These are the authorize layers, each defined once and met by every
#   caller alike (the agent's owner, its tokens, grantees, audiences, the
#   operator): a layer that denies adds one entry to denials, and main
#   reports every entry. To add a layer, add a denials rule here. A sentence
#   is built only for a layer that denies.
package agentauthz.actions

import data.agentauthz.access
import data.agentauthz.ceilings
import data.agentauthz.config
import data.agentauthz.tools

# _action is the config entry of input.action; undefined for an unknown action.
_action := config.actions[input.action]

# _capability is the capability the action needs; undefined when it needs none.
_capability := _action.capability if is_string(_action.capability)

denials contains {"by": "unknown_action", "reason": sprintf("%q is not a known action", [input.action])} if {
	not _action
}

# The caller needs the action's role on the agent.
denials contains {"by": "agent_role", "reason": access.role_shortfall(input.action, min_role)} if {
	min_role := _action.min_role
	not access.at_least(min_role)
}

# Only an active agent whose owner exists and is active may act.
denials contains {"by": "agent_status", "reason": sprintf("agent %v is not active or its owner is missing or not active", [input.agent.id])} if {
	not _active(input.agent)
}

# The agent acts on behalf of its owner, never beyond the owner's capabilities.
denials contains {"by": "owner_ceiling", "reason": sprintf("the agent's owner lacks %s", [cap])} if {
	cap := _capability

	# object.get: a missing owner must fail the ceiling, and a call with
	# an undefined argument would be undefined, which `not` does not negate
	not ceilings.user_has(object.get(input.agent, "owner", null), cap)
}

denials contains {"by": "tool_policy", "reason": sprintf("agent %v's tool policy blocks %s", [input.agent.id, input.tool])} if {
	is_string(input.tool)
	tools.tool_blocked(input.agent.tool_policy, input.tool)
}

# A token acts within its own list too.
denials contains {"by": "token_ceiling", "reason": ceilings.token_ceiling_reason(cap)} if {
	input.principal.kind == "token"
	cap := _capability
	not ceilings.token_allows(input.principal.token, cap)
}

# _active(agent): the agent and its owner (present) are both active.
_active(agent) if {
	agent.status == "active"
	agent.owner.status == "active"
}
