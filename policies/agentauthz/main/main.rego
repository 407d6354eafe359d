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
import data.agentauthz.routes

# METADATA
# title: decision
# description: |
#   {allow, role, denied_by, reasons} for every ability, plus capabilities
#   (whoami), accessible and scope (list-accessible-agents) or route
#   (forward-auth, when a route matched).
# entrypoint: true
default decision := {
	"allow": false,
	"role": null,
	"denied_by": ["input"],
	"reasons": ["the request could not be decided"],
}

# One branch per kind of answer, each guarded so that at most one holds (no
# else chain: every branch is a plain body, which the rule index can pick
# and OPA's partial evaluation can specialise).
decision := {
	"allow": false,
	"role": null,
	"denied_by": ["input"],
	"reasons": sort(input_problems),
} if {
	count(input_problems) > 0
}

# authorize: the runtime layers of package actions (the ability table's
# row for authorize needs nothing, so its generic checks are skipped).
decision := _verdict(actions.denials) if {
	input.ability == "authorize"
	count(input_problems) == 0
}

# forward-auth: which route of config.routes the gateway's original request
# means (package routes); Go then asks authorize about the route it names.
decision := routes.decision if {
	input.ability == "forward-auth"
	count(input_problems) == 0
}

decision := object.union(_verdict(abilities.denials), {"capabilities": ceilings.effective_capabilities}) if {
	input.ability == "whoami"
	count(input_problems) == 0
}

decision := object.union(_verdict(abilities.denials), {"accessible": access.accessible, "scope": access.scope}) if {
	input.ability == "list-accessible-agents"
	count(input_problems) == 0
}

decision := _verdict(abilities.denials) if {
	not input.ability in {"authorize", "whoami", "list-accessible-agents", "forward-auth"}
	count(input_problems) == 0
}

# _verdict(denials) is the decision document for a set of {by, reason}
# denials: allowed when there is none. The two bodies exclude each other;
# the common answer (nothing denies) builds no comprehension.
_verdict(denials) := {"allow": true, "role": access.role, "denied_by": [], "reasons": []} if {
	count(denials) == 0
}

_verdict(denials) := {
	"allow": false,
	"role": access.role,
	"denied_by": sort({denial.by | some denial in denials}),
	# a set iterates in sorted order ("by" first), so reasons line up with denied_by
	"reasons": [denial.reason | some denial in denials],
} if {
	count(denials) > 0
}

# input_problems names everything missing or malformed in input. Each rule
# tests its cheapest, most often false condition first and inline (rule
# references cost more than expressions): this runs on every decision.
# Malformed grants or audiences need no rule: they match nothing, which only
# ever takes access away.
# Negating a call whose argument is missing is undefined, not true: presence
# is tested by object.get with a default, or (when input itself may not be an
# object) by a small rule that a missing value leaves undefined.
input_problems contains "input.principal is missing or not an object" if not is_object(object.get(_input, "principal", null))

input_problems contains "input.ability is missing or not a string" if not is_string(object.get(_input, "ability", null))

input_problems contains sprintf("principal.kind %v is not one of %s", [kind, concat(", ", kinds)]) if {
	kind := object.get(input.principal, "kind", null)
	kinds := ["anonymous", "audience", "operator", "token", "user"]
	not kind in kinds
}

# A token principal needs principal.token with an agent_id and a valid
# ceiling: two bodies of one problem, so that neither needs a helper rule.
input_problems contains _malformed_token if {
	input.principal.kind == "token"
	not input.principal.token.agent_id
}

input_problems contains _malformed_token if {
	input.principal.kind == "token"
	not ceilings.valid_ceiling(object.get(input.principal.token, "capabilities", false))
}

_malformed_token := "a token principal needs principal.token with agent_id and capabilities (null or a list of names)"

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

# Denials name the agent by its id: an agent without one would leave their
# reasons, and so the denials themselves, undefined (a silent allow).
input_problems contains sprintf("%s needs input.agent.id and owner_id (numbers)", [input.ability]) if {
	agent_scoped
	agent := object.get(input, "agent", null)
	is_object(agent)
	not _identified(agent)
}

input_problems contains "every candidate in input.agents needs id and owner_id (numbers)" if {
	input.ability == "list-accessible-agents"
	some agent in object.get(input, "agents", [])
	not _identified(agent)
}

_identified(agent) if {
	is_number(agent.id)
	is_number(agent.owner_id)
}

input_problems contains sprintf("minimum_role %v is not an agent role", [access.minimum_role]) if {
	input.ability in {"can-access-agent", "list-accessible-agents"}
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
	not _rfc3339_or_null(object.get(input, ["token_request", "expires_at"], null))
}

input_problems contains "principal.token.expires_at must be null or an RFC 3339 time" if {
	input.principal.kind == "token"
	not _rfc3339_or_null(object.get(input.principal, ["token", "expires_at"], null))
}

_rfc3339_or_null(at) if at == null

_rfc3339_or_null(at) if time.parse_rfc3339_ns(at)

input_problems contains "forward-auth needs input.request {method: string, segments: list of strings, headers: object of strings}" if {
	input.ability == "forward-auth"
	not _forward_request(object.get(input, "request", null))
}

_forward_request(request) if {
	is_string(request.method)
	is_array(request.segments)
	every segment in request.segments {
		is_string(segment)
	}
	is_object(request.headers)
	every value in request.headers {
		is_string(value)
	}
}

input_problems contains "create-agent needs resource.owner_id" if {
	input.ability == "create-agent"
	not input.resource.owner_id
}

# _input is input when it is an object (one rule for both presence checks
# above: object.get on anything else would be undefined, not a problem).
default _input := {}

_input := input if is_object(input)

agent_scoped if input.ability == "authorize"

agent_scoped if input.ability == "can-access-agent"

agent_scoped if is_string(config.abilities[input.ability].min_role)
