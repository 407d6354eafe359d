# METADATA
# description: |
#   The caller's role on an agent. rank_on(agent) is the ONE rule behind the
#   decision's role, every min_role check, can-access-agent and
#   list-accessible-agents, so the listing always equals the check.
package agentauthz.access

import data.agentauthz.ceilings
import data.agentauthz.config

# rank(role) is an agent role's rank; undefined for an unknown role, which therefore denies.
rank(role) := config.agent_roles[role] if is_string(role)

# role_named(r) turns a rank back into its role name (the smallest name if a
# bundle gave two roles one rank, so the answer is always a single value).
role_named(r) := min({name | some name, x in config.agent_roles; x == r})

# rank_on(agent) is the caller's best rank on agent; undefined when it has none.
rank_on(agent) := config.agent_roles.admin if {
	admin_on(agent)
} else := best_grant_rank(agent)

# caller_rank is the caller's rank on input.agent; undefined when it has none.
caller_rank := rank_on(input.agent)

# role is the caller's role on input.agent, null when it has none.
default role := null

role := role_named(caller_rank)

# at_least(min_role): the caller's role on input.agent is min_role or better.
at_least(min_role) if caller_rank >= rank(min_role)

# The operator is admin everywhere when the bundle says it is a superuser.
admin_on(_) if ceilings.operator_is_superuser

# The owner of an agent is admin on it.
admin_on(agent) if {
	user_reaches(agent)
	agent.owner_id == input.principal.user.id
}

# A site administrator is admin on every agent it reaches.
admin_on(agent) if {
	user_reaches(agent)
	site_admin
}

# site_admin: the caller holds the implies-all capability and the switch is on.
# For a token it counts only when the token's ceiling includes that capability.
site_admin if {
	config.settings.site_admins_are_agent_admins == true
	ceilings.principal_has(config.settings.implies_all_capability)
}

# user_reaches(agent): the acting user's rules (owner, site admin, the user's
# grants) apply on agent. A user reaches every agent. A token acts for its
# agent: it reaches its own agent, and its owner's others only when
# token_reach is "owner" (least privilege by default).
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

# best_grant_rank(agent) is the best rank granted on agent to any of the
# caller's identities; grants with unknown roles are ignored.
best_grant_rank(agent) := max(ranks) if {
	grants_reach(agent)
	ranks := {r |
		some grant in input.grants
		grant.agent_id == agent.id
		grant.principal in identities
		r := rank(grant.role)
	}
	count(ranks) > 0
}

# identities are the grant principals that speak for the caller: itself, the
# audiences the proxy attached, and audience:public. Anonymous callers are only
# audience:public.
identities contains "audience:public"

identities contains sprintf("user:%v", [input.principal.user.id]) if acts_as_user

identities contains input.principal.id if input.principal.kind == "audience"

identities contains audience if {
	not input.principal.kind == "anonymous"
	some audience in input.principal.audiences
	is_string(audience)
}

acts_as_user if input.principal.kind == "user"

acts_as_user if input.principal.kind == "token"

# sees_every_agent: list-accessible-agents may use scope "all". A token sees
# every agent only when it reaches them (token_reach "owner").
sees_every_agent if ceilings.operator_is_superuser

sees_every_agent if {
	site_admin
	input.principal.kind == "user"
}

sees_every_agent if {
	site_admin
	input.principal.kind == "token"
	config.settings.token_reach == "owner"
}

# minimum_role is the role can-access-agent and list-accessible-agents ask for.
default minimum_role := "viewer"

minimum_role := input.minimum_role if input.minimum_role != null

# accessible lists every candidate agent whose role (rank_on, as for
# can-access-agent) is at least minimum_role.
accessible := [{"agent_id": agent.id, "role": role_named(r)} |
	some agent in input.agents
	r := rank_on(agent)
	r >= rank(minimum_role)
]

scope := "all" if sees_every_agent

else := "related"
