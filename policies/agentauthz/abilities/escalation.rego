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
	not ceilings.token_allows(input.principal.token, cap)
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
	reason := sprintf("the caller's role on agent %v (%s) is below the %s role it would grant", [input.agent.id, access.held_role, role])
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
	not ceilings.token_allows(input.principal.token, cap)
	not owner_lacks_action_capability(role, cap)
}

owner_lacks_action_capability(role, cap) if {
	not cap in ability_capabilities(role)
	not ceilings.user_has(object.get(input.agent, "owner", null), cap)
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

# Agent updates: who does not govern the agent is bound by its tool policy
# and its status (a token, a grantee), so it may only narrow the tool policy
# (the new one permits no tool the old one blocks; clearing it widens) ...
denials contains {"by": "tool_ceiling", "reason": reason} if {
	input.ability == "update-agent"
	"tool_policy" in object.keys(object.get(input, "agent_update", {}))
	not governs_agent
	not tools.narrows(input.agent_update.tool_policy, input.agent.tool_policy)
	reason := sprintf("only agent %v's owner or a site administrator may widen its tool policy", [input.agent.id])
}

# ... and may deactivate the agent but never reactivate it.
denials contains {"by": "status_ceiling", "reason": reason} if {
	input.ability == "update-agent"
	input.agent_update.status == "active"
	input.agent.status != "active"
	not governs_agent
	reason := sprintf("only agent %v's owner or a site administrator may reactivate it", [input.agent.id])
}

# governs_agent: the caller has no tool or status ceiling on input.agent:
# its owner acting as a user, a site administrator (a user), the operator.
governs_agent if {
	input.principal.kind == "user"
	input.agent.owner_id == input.principal.user.id
}

governs_agent if {
	input.principal.kind == "user"
	access.site_admin
}

governs_agent if ceilings.operator_is_superuser

# Creating an agent: a token creates one only as its owner would (a null
# list: a restricted token would hand its owner powers the list withholds)
# and only with a tool policy that narrows its own agent's.
denials contains {"by": "token_ceiling", "reason": "a token with a capability list may not create agents"} if {
	input.ability == "create-agent"
	input.principal.kind == "token"
	input.principal.token.capabilities != null
}

denials contains {"by": "tool_ceiling", "reason": "a token may only create an agent whose tool policy narrows its own agent's"} if {
	input.ability == "create-agent"
	input.principal.kind == "token"
	not tools.narrows(
		object.get(input, ["agent_request", "tool_policy"], null),
		object.get(input, ["creator_agent", "tool_policy"], no_tools),
	)
}

# no_tools stands for a creator agent the input does not describe: it
# permits nothing, so only a policy that permits nothing narrows it.
no_tools := {"mode": "allow", "tools": []}

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

# A token may only narrow users (remove roles, disable): roles it confers
# would reach agents it does not.
denials contains {"by": "role_ceiling", "reason": "a token may not confer user roles or re-enable a user"} if {
	input.ability in {"create-user", "update-user"}
	input.principal.kind == "token"
	count(conferred_roles) > 0
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
