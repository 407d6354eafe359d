# METADATA
# description: |
#   The ability table: every named operation needs its capability (null: none)
#   and, when agent-scoped, a minimum role on input.agent. Minting a token and
#   creating an agent add their own ceilings. Each denial carries the layer
#   that denied ("by") and one sentence for humans ("reason").
package agentauthz.abilities

import data.agentauthz.access
import data.agentauthz.ceilings
import data.agentauthz.config

ability := config.abilities[input.ability]

# required_capability is the capability the ability needs; undefined when none.
required_capability := ability.capability if is_string(ability.capability)

denials contains {"by": "ability", "reason": sprintf("%q is not a known ability", [input.ability])} if not ability

# A token whose owner lacks the capability fails the owner ceiling ...
denials contains {"by": "owner_ceiling", "reason": sprintf("the token's owner lacks %s", [cap])} if {
	input.principal.kind == "token"
	cap := required_capability
	not ceilings.user_has(input.principal.user, cap)
}

# ... and one whose own list lacks it fails the token ceiling (both may fail).
denials contains {"by": "token_ceiling", "reason": ceilings.token_ceiling_reason(cap)} if {
	input.principal.kind == "token"
	cap := required_capability
	not ceilings.token_allows(input.principal.token, cap)
}

denials contains {"by": "capability", "reason": sprintf("%s requires the capability %s", [input.ability, cap])} if {
	cap := required_capability
	input.principal.kind != "token"
	not ceilings.principal_has(cap)
}

denials contains {"by": "agent_role", "reason": access.role_shortfall(input.ability, ability.min_role)} if {
	is_string(ability.min_role)
	not access.at_least(ability.min_role)
}

# can-access-agent asks for the caller's role against minimum_role.
denials contains {"by": "agent_role", "reason": access.role_shortfall(input.ability, access.minimum_role)} if {
	input.ability == "can-access-agent"
	not access.at_least(access.minimum_role)
}

# A token can never be minted wider than its minter.
denials contains {"by": "mint_ceiling", "reason": reason} if {
	input.ability == "create-agent-token"
	count(mint_excess) > 0
	reason := sprintf("the requested token would exceed the minter's capabilities: %s", [concat(", ", sort(mint_excess))])
}

# Creating an agent for somebody else takes a site administrator or the operator.
denials contains {"by": "owner_mismatch", "reason": reason} if {
	input.ability == "create-agent"
	not may_create_for(input.resource.owner_id)
	reason := sprintf("only a site administrator may create an agent owned by user %v", [input.resource.owner_id])
}

# mint_excess names what the requested token would hold beyond the minter.
# A list asks for exactly those names; null asks for the owner's whole ceiling,
# so the minter must hold every capability the agent's owner holds.
mint_excess := {cap |
	some cap in input.token_request.capabilities
	not ceilings.principal_has(cap)
} if {
	is_array(input.token_request.capabilities)
} else := {cap |
	some cap in ceilings.known_capabilities
	ceilings.user_has(input.agent.owner, cap)
	not ceilings.principal_has(cap)
}

may_create_for(owner_id) if owner_id == input.principal.user.id

may_create_for(_) if access.site_admin

may_create_for(_) if ceilings.operator_is_superuser
