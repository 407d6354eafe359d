# Non-escalation: every ability that changes who may do what is bounded by
# the caller's own ceilings. A caller may create or widen only access that
# it holds itself, and may only narrow what it cannot hold. These denials
# join the ability table's (same package), so every caller of an ability
# meets them: owner, token, grantee and operator alike.
package agentauthz.abilities

import data.agentauthz.access
import data.agentauthz.ceilings
import data.agentauthz.config
import data.agentauthz.tools

# Management powers: a token must name the ability's token_capability in its
# own list (["read"] means read). Its owner need not hold it: a token with a
# null list is its owner. Revoking one's own token only narrows, so a token
# may always revoke itself.
denials contains {"by": "token_ceiling", "reason": sprintf("token ceiling does not include %s, which %s needs", [cap, input.ability])} if {
	input.principal.kind == "token"
	cap := ability.token_capability
	is_string(cap)
	not ceilings.token_allows(cap)
	not revokes_itself
}

revokes_itself if {
	input.ability == "revoke-agent-token"
	input.target_token.id == input.principal.token.id
}

# Grants: nobody grants a role above its own role on the agent ...
denials contains {"by": "grant_ceiling", "reason": reason} if {
	input.ability == "grant-agent-access"
	role := input.grant_request.role
	not access.at_least(role)
	reason := sprintf("the caller's role on agent %v (%s) is below the %s role it would grant", [input.agent.id, held_role, role])
}

# ... and a token grants a role only if it holds the role's powers: every
# capability an action or ability reachable with that role needs.
denials contains {"by": "grant_ceiling", "reason": reason} if {
	input.ability == "grant-agent-access"
	input.principal.kind == "token"
	missing := role_powers_missing(input.grant_request.role)
	count(missing) > 0
	reason := sprintf("the %s role reaches capabilities the token does not hold: %s", [input.grant_request.role, concat(", ", sort(missing))])
}

# role_powers_missing(role): the capabilities reachable with role that the
# calling token's list lacks. An action's capability the agent's owner lacks
# is nobody's to use, so it is not required; an ability's capability is the
# grantee's own, so it always is.
role_powers_missing(role) := {cap |
	some cap in reachable_capabilities(role)
	not ceilings.token_allows(cap)
	not owner_lacks_action_capability(role, cap)
}

owner_lacks_action_capability(role, cap) if {
	not cap in ability_capabilities(role)
	not ceilings.agent_owner_has(cap)
}

# reachable_capabilities(role): what a holder of role may exercise on an agent.
reachable_capabilities(role) := action_capabilities(role) | ability_capabilities(role)

action_capabilities(role) := {cap |
	rank := config.agent_roles[role]
	some act in config.actions
	config.agent_roles[act.min_role] <= rank
	cap := act.capability
	is_string(cap)
}

ability_capabilities(role) := {cap |
	rank := config.agent_roles[role]
	some entry in config.abilities
	is_string(entry.min_role)
	config.agent_roles[entry.min_role] <= rank
	some key in ["capability", "token_capability"]
	cap := entry[key]
	is_string(cap)
}

# Agent updates: a token may only narrow the tool policy it is bound by;
# clearing it (every tool) needs a caller with no tool ceiling (a user).
denials contains {"by": "tool_ceiling", "reason": reason} if {
	input.ability == "update-agent"
	input.principal.kind == "token"
	"tool_policy" in object.keys(object.get(input, "agent_update", {}))
	not tools.narrows(input.agent_update.tool_policy, input.agent.tool_policy)
	reason := sprintf("a token may only narrow agent %v's tool policy", [input.agent.id])
}

# A token may deactivate its agent but never reactivate one.
denials contains {"by": "status_ceiling", "reason": reason} if {
	input.ability == "update-agent"
	input.principal.kind == "token"
	input.agent_update.status == "active"
	input.agent.status != "active"
	reason := sprintf("a token may not reactivate agent %v", [input.agent.id])
}

# Minting: a token that expires cannot mint one that outlives it.
denials contains {"by": "mint_lifetime", "reason": reason} if {
	input.ability == "create-agent-token"
	limit := input.principal.token.expires_at
	is_string(limit)
	not expires_by(object.get(input, ["token_request", "expires_at"], null), limit)
	reason := sprintf("the requested token would outlive the minter, which expires at %s", [limit])
}

# expires_by(at, limit): at is a time no later than limit (null never is).
expires_by(at, limit) if time.parse_rfc3339_ns(at) <= time.parse_rfc3339_ns(limit)

# User roles: a caller hands out only roles whose capabilities it holds, when
# creating a user, changing its roles, or re-enabling it with its roles.
denials contains {"by": "role_ceiling", "reason": reason} if {
	input.ability in {"create-user", "update-user"}
	some role in conferred_roles
	some cap, held in config.roles[role]
	held == true
	not ceilings.principal_has(cap)
	reason := sprintf("role %s carries %s, which the caller does not hold", [role, cap])
}

# conferred_roles: the roles the request gives a user the use of.
conferred_roles contains role if {
	some role in input.user_request.roles
}

conferred_roles contains role if {
	input.user_request.status == "active"
	input.target_user.status != "active"
	not "roles" in object.keys(input.user_request)
	some role in input.target_user.roles
}
