# METADATA
# description: |
#   The runtime decision (ability "authorize", POST /v1/authorize): may the
#   caller make input.agent perform input.action (optionally with input.tool)?
#   Every layer is checked on its own and every failing layer is reported.
#   This is the hot path. In OPA's evaluator every rule evaluated costs a
#   cache entry and every distinct data path a storage read, far more than an
#   expression, so the common case (the owner acting on its agent) is answered
#   by owner_decision in one body, and the general layers below answer the
#   rest. A sentence is built only for a layer that denies.
package agentauthz.actions

import data.agentauthz.access
import data.agentauthz.ceilings
import data.agentauthz.config
import data.agentauthz.tools

# The general layers: one entry per failing layer.
denials contains {"by": "unknown_action", "reason": layer_reason("unknown_action")} if {
	not config.actions[input.action]
}

# The caller needs the action's role on the agent.
denials contains {"by": "agent_role", "reason": layer_reason("agent_role")} if {
	not access.at_least(config.actions[input.action].min_role)
}

# Only an active agent whose owner exists and is active may act. One body per
# condition (the set keeps one entry) instead of a helper rule.
denials contains {"by": "agent_status", "reason": layer_reason("agent_status")} if {
	not input.agent.status == "active"
}

denials contains {"by": "agent_status", "reason": layer_reason("agent_status")} if {
	not input.agent.owner.status == "active"
}

# The agent acts on behalf of its owner, never beyond the owner's capabilities.
denials contains {"by": "owner_ceiling", "reason": layer_reason("owner_ceiling")} if {
	cap := config.actions[input.action].capability
	is_string(cap)
	not ceilings.agent_owner_has(cap)
}

denials contains {"by": "tool_policy", "reason": layer_reason("tool_policy")} if {
	is_string(input.tool)
	tools.tool_blocked(input.agent.tool_policy, input.tool)
}

# The token ceiling (ceilings.token_allows inline): null restricts nothing, a
# list holds exactly its names. The decision reaches this only after
# main.input_problems has checked that capabilities is null or such a list.
denials contains {"by": "token_ceiling", "reason": layer_reason("token_ceiling")} if {
	input.principal.kind == "token"
	caps := input.principal.token.capabilities
	caps != null
	cap := config.actions[input.action].capability
	is_string(cap)
	not cap in caps
}

# layer_reason(by) is the sentence for a failing layer, shared by denials and
# owner_decision so that both say the same thing. The equality on by comes
# last in the head's body but the rule index still picks the one body (a
# constant in the head's argument position did not index here).
layer_reason(by) := sprintf("%q is not a known action", [input.action]) if by == "unknown_action"

layer_reason(by) := sprintf("%s needs the %s role on agent %v; the caller has %s", [
	input.action, config.actions[input.action].min_role, input.agent.id, held_role,
]) if by == "agent_role"

layer_reason(by) := sprintf("agent %v is not active or its owner is missing or not active", [input.agent.id]) if by == "agent_status"

layer_reason(by) := sprintf("the agent's owner lacks %s", [config.actions[input.action].capability]) if by == "owner_ceiling"

layer_reason(by) := sprintf("agent %v's tool policy blocks %s", [input.agent.id, input.tool]) if by == "tool_policy"

layer_reason(by) := sprintf("token ceiling does not include %s", [config.actions[input.action].capability]) if by == "token_ceiling"

held_role := access.role if access.role != null

else := "none"

# owner_decision is the whole authorize decision when the caller is the
# agent's owner acting on it (access.owner_acts: role admin, no grants to
# read), the action is known and has a capability, and the owner is active
# and holds that capability through one of its roles. Those conditions make
# unknown_action and owner_ceiling pass; the other layers are computed as
# flags (true: the layer passes) from the very conditions the general rules
# test. Outside that case it is undefined and main falls back to the general
# layers; fastpath_test checks that both agree on every input of a grid.
owner_decision := {
	"allow": count(denied_by) == 0,
	"role": "admin",
	"denied_by": denied_by,
	"reasons": [layer_reason(by) | some by in denied_by],
} if {
	access.owner_acts
	act := config.actions[input.action]
	cap := act.capability
	is_string(cap)
	input.agent.owner.status == "active"
	owner_holds(cap)
	ranks := config.agent_roles
	caps := object.get(input.principal, ["token", "capabilities"], null)
	flags := {
		# access.at_least for the owner: admin's rank against the action's.
		# An unknown min_role leaves this undefined, and so the decision.
		"agent_role": ranks.admin >= ranks[act.min_role],
		# the owner is active (above); the agent's status must be "active"
		"agent_status": object.get(input.agent, "status", null) == "active",
		# ceilings.token_allows: not a token, a null list, or cap listed
		# (input_problems guarantees a token's list is null or an array;
		# object.get because a user has no token and an undefined element
		# would leave the whole flags object undefined)
		"token_ceiling": true in [
			input.principal.kind != "token",
			caps == null,
			cap in caps,
		],
		"tool_policy": tools.permits(object.get(input.agent, "tool_policy", null), object.get(input, "tool", null)),
	}

	# an object iterates in key order, so denied_by comes out sorted
	denied_by := [by | some by, passes in flags; passes == false]
}

# owner_holds(cap): one of the agent owner's roles holds cap itself (the first
# body of ceilings.user_has; the caller has checked the owner is active).
owner_holds(cap) if {
	some name in input.agent.owner.roles
	config.roles[name][cap] == true
}
