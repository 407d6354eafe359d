# METADATA
# description: |
#   The runtime decision (ability "authorize", POST /v1/authorize): may the
#   caller make input.agent perform input.action (optionally with input.tool)?
#   Every layer is checked on its own and every failing layer is reported.
#   This is the hot path: each layer is a handful of inline key lookups.
package agentauthz.actions

import data.agentauthz.access
import data.agentauthz.ceilings
import data.agentauthz.config
import data.agentauthz.tools

action := config.actions[input.action]

denials contains {"by": "unknown_action", "reason": sprintf("%q is not a known action", [input.action])} if not action

# The caller needs the action's role on the agent.
denials contains {"by": "agent_role", "reason": reason} if {
	not access.at_least(action.min_role)
	reason := sprintf("%s needs the %s role on agent %v; the caller has %s", [
		input.action, action.min_role, input.agent.id, held_role,
	])
}

# Only an active agent whose owner exists and is active may act.
denials contains {"by": "agent_status", "reason": sprintf("agent %v is not active or its owner is missing or not active", [input.agent.id])} if {
	not agent_active
}

# The agent acts on behalf of its owner, never beyond the owner's capabilities.
denials contains {"by": "owner_ceiling", "reason": sprintf("the agent's owner lacks %s", [cap])} if {
	cap := action.capability
	is_string(cap)
	not ceilings.agent_owner_has(cap)
}

denials contains {"by": "tool_policy", "reason": sprintf("agent %v's tool policy blocks %s", [input.agent.id, input.tool])} if {
	is_string(input.tool)
	tools.tool_blocked(input.agent.tool_policy, input.tool)
}

denials contains {"by": "token_ceiling", "reason": sprintf("token ceiling does not include %s", [cap])} if {
	input.principal.kind == "token"
	cap := action.capability
	is_string(cap)
	not ceilings.token_allows(cap)
}

agent_active if {
	input.agent.status == "active"
	input.agent.owner.status == "active"
}

held_role := access.role if access.role != null

else := "none"
