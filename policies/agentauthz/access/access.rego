# METADATA
# description: |
#   The caller's role on an agent. role_on(agent) is the ONE rule behind the
#   decision's role, every min_role check, can-access-agent and
#   list-accessible-agents, so the listing always equals the check.
package agentauthz.access

import data.agentauthz.ceilings
import data.agentauthz.config

# role_on(agent) is [rank, role name] of the caller's best role on agent and
# undefined when it has none. Carrying the name beside the rank lets max pick
# the best role without a reverse lookup.
role_on(agent) := admin if {
	# the owner first, in one body: the common case builds nothing
	agent.owner_id == input.principal.user.id
	user_reaches(agent)
} else := admin if {
	admin_on(agent)
} else := max(granted) if {
	grants_reach(agent)

	# Bind the whole index first: OPA then builds it once per decision and
	# looks agents up in it; a keyed reference (caller_grants[agent.id])
	# would re-run the rule body for every agent.
	index := caller_grants
	granted := {[rank, grant.role] |
		some grant in index[agent.id]
		rank := config.agent_roles[grant.role] # unknown roles have no rank: ignored
	}
	count(granted) > 0
}

# caller_grants indexes, once per decision, the grants that speak for the
# caller by agent id, so role_on costs a lookup per agent rather than a scan
# of every grant (list-accessible-agents asks it for every candidate: a scan
# made that listing quadratic).
caller_grants[grant.agent_id] contains grant if {
	some grant in input.grants
	grant.principal in identities
}

admin := [config.agent_roles.admin, "admin"]

# caller_role is role_on(input.agent), evaluated once per decision.
caller_role := role_on(input.agent)

# role is the caller's role on input.agent, null when it has none.
default role := null

role := caller_role[1]

# held_role names the caller's role on input.agent in sentences: "none" when it has none.
default held_role := "none"

held_role := caller_role[1]

# role_shortfall(what, min_role) is the sentence of an agent_role denial:
# what (an ability or an action) needs min_role, which the caller lacks.
role_shortfall(what, min_role) := sprintf("%s needs the %s role on agent %v; the caller has %s", [
	what, min_role, input.agent.id, held_role,
])

# at_least(min_role): the caller's role on input.agent is min_role or better;
# an unknown min_role has no rank and so is never reached.
at_least(min_role) if caller_role[0] >= config.agent_roles[min_role]

# admin_on(agent): admin other than by ownership (the owner is role_on's
# first body, the common case, answered without these rules).
# The operator, and a site administrator who reaches every agent, are admin everywhere.
admin_on(_) if sees_every_agent

# A site administrator's token (reach "agent") is still admin on its own agent.
admin_on(agent) if {
	input.principal.kind == "token"
	agent.id == input.principal.token.agent_id
	site_admin
}

# site_admin: the caller holds the implies-all capability and the switch is on.
# For a token it counts only when the token's ceiling includes that capability.
site_admin if {
	config.settings.site_admins_are_agent_admins == true
	ceilings.principal_has(config.settings.implies_all_capability)
}

# sees_every_agent: the caller is admin on every agent, so list-accessible-agents
# may use scope "all". A token reaches every agent only with token_reach "owner".
sees_every_agent if ceilings.operator_is_superuser

sees_every_agent if {
	input.principal.kind == "user"
	site_admin
}

sees_every_agent if {
	input.principal.kind == "token"
	config.settings.token_reach == "owner"
	site_admin
}

# user_reaches(agent): the acting user's rules (owner, its grants) apply on
# agent. A user reaches every agent. A token acts for its agent: it reaches
# its own agent, and its owner's others only when token_reach is "owner"
# (least privilege by default: a chat-bridge token must not manage siblings).
user_reaches(_) if input.principal.kind == "user"

user_reaches(agent) if {
	input.principal.kind == "token"
	agent.id == input.principal.token.agent_id
}

user_reaches(_) if {
	input.principal.kind == "token"
	config.settings.token_reach == "owner"
}

# grants_reach(agent): the caller's grants count on agent.
grants_reach(agent) if user_reaches(agent)

grants_reach(_) if input.principal.kind == "audience"

grants_reach(_) if input.principal.kind == "anonymous"

# identities are the grant principals that speak for the caller: itself, the
# audiences the proxy attached, and audience:public. Anonymous callers are only
# audience:public.
identities contains "audience:public"

identities contains sprintf("user:%v", [input.principal.user.id]) if acts_as_user

identities contains input.principal.id if input.principal.kind == "audience"

identities contains audience if {
	input.principal.kind != "anonymous"
	some audience in input.principal.audiences
	is_string(audience)
}

acts_as_user if input.principal.kind == "user"

acts_as_user if input.principal.kind == "token"

# minimum_role is the role can-access-agent and list-accessible-agents ask for.
default minimum_role := "viewer"

minimum_role := input.minimum_role if input.minimum_role != null

# accessible lists every candidate agent whose role_on (the can-access-agent
# rule) is at least minimum_role.
accessible := [{"agent_id": agent.id, "role": r[1]} |
	some agent in input.agents
	r := role_on(agent)
	r[0] >= config.agent_roles[minimum_role]
]

default scope := "related"

scope := "all" if sees_every_agent
