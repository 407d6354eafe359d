# Fixture policy for internal/policy tests: small, but shaped like the real one.
package agentauthz.main

import data.agentauthz.config

decision := object.union(base, extras)

base := {
	"allow": count(denied_by) == 0,
	"role": role,
	"denied_by": denied_by,
	"reasons": [sprintf("denied by %s", [d]) | some d in denied_by],
}

default role := null

role := "admin" if input.agent.owner_id == input.principal.user.id

else := g.role if {
	some g in input.grants
	g.agent_id == input.agent.id
}

denied_by contains "ability" if not config.abilities[input.ability]

denied_by contains "agent_role" if {
	min := config.abilities[input.ability].min_role
	min != null
	not role_at_least(min)
}

role_at_least(min) if config.agent_roles[role] >= config.agent_roles[min]

extras := {"capabilities": sort(object.keys(config.roles[input.principal.user.roles[0]]))} if {
	input.ability == "whoami"
} else := {
	"scope": "related",
	"accessible": [{"agent_id": a.id, "role": "viewer"} | some a in input.agents],
} if {
	input.ability == "list-accessible-agents"
} else := {}
