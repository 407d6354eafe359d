# METADATA
# description: |
#   The decision entrypoint. Go gathers the facts into input; this package
#   checks that input is well formed, then joins the denials of the ability
#   table (package abilities) and of the runtime actions (package actions)
#   into one decision document. The decision is always defined: odd input
#   yields a denial with denied_by ["input"], never an error or undefined.
package agentauthz.main

import data.agentauthz.abilities
import data.agentauthz.access
import data.agentauthz.actions
import data.agentauthz.ceilings
import data.agentauthz.config

# METADATA
# title: decision
# description: |
#   {allow, role, denied_by, reasons} for every ability, plus capabilities
#   (whoami) or accessible and scope (list-accessible-agents).
# entrypoint: true
default decision := {
	"allow": false,
	"role": null,
	"denied_by": ["input"],
	"reasons": ["the request could not be decided"],
}

# authorize is the hot path and goes first: authorize_input_ok proves in one
# indexed body that input_problems is empty, so the problem set (a dozen
# bodies) is never built for a well-formed authorize request. The owner acting
# on its agent is then answered by actions.owner_decision in one body, anyone
# else by the general layers (authorize_verdict). When authorize_input_ok
# fails the chain below decides exactly as before.
decision := actions.owner_decision if {
	input.ability == "authorize"
	authorize_input_ok
} else := authorize_verdict if {
	input.ability == "authorize"
	authorize_input_ok
} else := {
	"allow": false,
	"role": null,
	"denied_by": ["input"],
	"reasons": sort(input_problems),
} if {
	count(input_problems) > 0
} else := object.union(verdict, {"capabilities": ceilings.effective_capabilities}) if {
	input.ability == "whoami"
} else := object.union(verdict, {"accessible": access.accessible, "scope": access.scope}) if {
	input.ability == "list-accessible-agents"
} else := verdict

# authorize is the hot path: its layers live in package actions, so the
# ability table's generic checks (authorize's row needs nothing) are skipped.
# (decision answers authorize through authorize_verdict; the first branch here
# only keeps verdict right should it ever be reached for authorize.)
denials := actions.denials if {
	input.ability == "authorize"
} else := abilities.denials

# authorize_verdict is verdict for authorize without the two comprehensions
# when nothing denies (the common answer).
authorize_verdict := {"allow": true, "role": access.role, "denied_by": [], "reasons": []} if {
	count(actions.denials) == 0
} else := {
	"allow": false,
	"role": access.role,
	"denied_by": sort({denial.by | some denial in actions.denials}),
	"reasons": [denial.reason | some denial in actions.denials],
}

verdict := {
	"allow": count(denials) == 0,
	"role": access.role,
	"denied_by": sort({denial.by | some denial in denials}),
	# a set iterates in sorted order, so reasons line up with denied_by
	"reasons": [denial.reason | some denial in denials],
}

# input_problems names everything missing or malformed in input. Each rule
# tests its cheapest, most often false condition first and inline (rule
# references cost more than expressions): this runs on every decision.
# Malformed grants or audiences need no rule: they match nothing, which only
# ever takes access away.
# Negating a call whose argument is missing is undefined, not true: presence
# is tested by object.get with a default, or (when input itself may not be an
# object) by a small rule that a missing value leaves undefined.
input_problems contains "input.principal is missing or not an object" if not principal_present

input_problems contains "input.ability is missing or not a string" if not ability_present

input_problems contains sprintf("principal.kind %v is not one of anonymous, audience, operator, token, user", [kind]) if {
	not principal_kinds[input.principal.kind]
	is_object(input.principal)
	kind := object.get(input.principal, "kind", null)
}

principal_kinds := {"token": true, "user": true, "audience": true, "anonymous": true, "operator": true}

input_problems contains "a token principal needs principal.token with agent_id and capabilities (null or a list of names)" if {
	input.principal.kind == "token"
	not well_formed_token
}

input_problems contains "a user or token principal needs principal.user (an object)" if {
	not is_object(object.get(input.principal, "user", null))
	access.acts_as_user
}

input_problems contains "authorize needs input.action (a string)" if {
	input.ability == "authorize"
	not is_string(object.get(input, "action", null))
}

# A tool that is not a string would slip past the tool policy: refuse it.
input_problems contains "input.tool must be a string" if {
	tool := input.tool
	tool != null
	not is_string(tool)
}

input_problems contains sprintf("%s needs input.agent (an object)", [input.ability]) if {
	not is_object(object.get(input, "agent", null))
	agent_scoped
}

input_problems contains sprintf("minimum_role %v is not an agent role", [access.minimum_role]) if {
	input.ability == "can-access-agent"
	not config.agent_roles[access.minimum_role]
}

input_problems contains sprintf("minimum_role %v is not an agent role", [access.minimum_role]) if {
	input.ability == "list-accessible-agents"
	not config.agent_roles[access.minimum_role]
}

input_problems contains "list-accessible-agents needs input.agents to be a list" if {
	input.ability == "list-accessible-agents"
	not is_array(object.get(input, "agents", []))
}

input_problems contains "create-agent-token needs token_request.capabilities to be null or a list of names" if {
	input.ability == "create-agent-token"
	not ceilings.valid_ceiling(object.get(input, ["token_request", "capabilities"], null))
}

# The management requests carry what they would change; the escalation
# rules (escalation.rego) read it, so its absence must not read as "nothing".
input_problems contains sprintf("grant-agent-access needs grant_request.role, an agent role (not %v)", [role]) if {
	input.ability == "grant-agent-access"
	role := object.get(input, ["grant_request", "role"], null)
	not config.agent_roles[role]
}

input_problems contains "update-agent needs agent_update (an object)" if {
	input.ability == "update-agent"
	not is_object(object.get(input, "agent_update", null))
}

input_problems contains sprintf("%s needs user_request (an object)", [input.ability]) if {
	input.ability in {"create-user", "update-user"}
	not is_object(object.get(input, "user_request", null))
}

input_problems contains "token_request.expires_at must be null or an RFC 3339 time" if {
	input.ability == "create-agent-token"
	not rfc3339_or_null(object.get(input, ["token_request", "expires_at"], null))
}

input_problems contains "principal.token.expires_at must be null or an RFC 3339 time" if {
	input.principal.kind == "token"
	not rfc3339_or_null(object.get(input.principal, ["token", "expires_at"], null))
}

rfc3339_or_null(at) if at == null

rfc3339_or_null(at) if time.parse_rfc3339_ns(at)

input_problems contains "create-agent needs resource.owner_id" if {
	input.ability == "create-agent"
	not input.resource.owner_id
}

principal_present if is_object(input.principal)

ability_present if is_string(input.ability)

well_formed_token if {
	input.principal.token.agent_id
	ceilings.valid_ceiling(object.get(input.principal.token, "capabilities", false))
}

agent_scoped if input.ability == "authorize"

agent_scoped if input.ability == "can-access-agent"

agent_scoped if is_string(config.abilities[input.ability].min_role)

# authorize_input_ok holds exactly when input_problems is empty for an
# authorize request (every other problem is keyed on another ability): a
# known principal kind with its parts, a string action, an agent object and
# a tool that is absent, null or a string. One body per principal shape, each
# led by an equality the rule index can use, so only one body runs; the shared
# checks are repeated inline because a rule reference costs more than them.
# The first body is the second's common case (a null list) without the call.
authorize_input_ok if {
	input.principal.kind == "token"
	input.principal.token.capabilities == null
	input.principal.token.agent_id
	is_object(input.principal.user)
	is_string(input.action)
	is_object(input.agent)
	type_name(object.get(input, "tool", null)) in {"null", "string"}
}

authorize_input_ok if {
	input.principal.kind == "token"
	ceilings.valid_ceiling(input.principal.token.capabilities)
	input.principal.token.agent_id
	is_object(input.principal.user)
	is_string(input.action)
	is_object(input.agent)
	type_name(object.get(input, "tool", null)) in {"null", "string"}
}

authorize_input_ok if {
	input.principal.kind == "user"
	is_object(input.principal.user)
	is_string(input.action)
	is_object(input.agent)
	type_name(object.get(input, "tool", null)) in {"null", "string"}
}

authorize_input_ok if {
	input.principal.kind in {"audience", "anonymous", "operator"}
	is_string(input.action)
	is_object(input.agent)
	type_name(object.get(input, "tool", null)) in {"null", "string"}
}
