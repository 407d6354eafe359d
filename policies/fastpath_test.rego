# METADATA
# description: |
#   actions.owner_decision answers the common authorize request in one body;
#   these tests prove it equal to the general layers (main.authorize_verdict,
#   built from actions.denials and access.role) on a grid of principals,
#   agents, owners, tool policies, actions and tools, and with changed config.
package agentauthz.fastpath_test

import data.agentauthz.actions
import data.agentauthz.fixtures_test as f
import data.agentauthz.main

principals := [
	f.user(f.editor),
	f.user(f.subscriber),
	f.user(f.administrator),
	f.token(f.editor, 7, null),
	f.token(f.editor, 7, []),
	f.token(f.editor, 7, ["datamachine_chat"]),
	f.token(f.editor, 7, ["datamachine_chat", "datamachine_use_tools", "datamachine_run_pipelines", "datamachine_manage_flows", "read"]),
	f.token(f.editor, 8, null),
	f.token(f.administrator, 7, ["manage_options"]),
	f.audience("audience:acme"),
	f.anonymous,
	f.operator,
]

policies := [
	null,
	{"mode": "allow", "tools": ["web_search"]},
	{"mode": "allow", "tools": []},
	{"mode": "deny", "tools": ["shell"]},
	{"mode": "block", "tools": ["shell"]},
	{"mode": "allow", "tools": [1]},
	"deny",
]

owners := [
	f.editor,
	f.author,
	f.subscriber,
	f.administrator,
	object.union(f.editor, {"status": "disabled"}),
	{"id": 3, "roles": ["subscriber", "editor"], "status": "active"},
	{"id": 3, "roles": ["pirate", "boss"], "status": "active"},
]

# agent 7 owned by user 3 in every shape the layers look at.
agents := array.concat(
	[object.union(f.agent7, {"tool_policy": p}) | some p in policies],
	array.concat(
		[object.union(f.agent7, {"owner": o}) | some o in owners],
		[
			object.union(f.agent7, {"status": "inactive"}),
			object.remove(f.agent7, ["owner"]),
			object.remove(f.agent7, ["status", "tool_policy"]),
		],
	),
)

# (action, tool) pairs; each principal and agent meets two of them, in
# rotation, so that the grid stays small enough for the test timeout.
steps := [
	["chat", {}],
	["use_tools", {"tool": "web_search"}],
	["use_tools", {"tool": "shell"}],
	["run_pipeline", {"tool": null}],
	["manage_flows", {}],
	["read_jobs", {"tool": "shell"}],
	["read_memory", {"tool": "web_search"}],
	["teleport", {}],
	["use_tools", {}],
	["chat", {"tool": "shell"}],
	["manage_flows", {"tool": "web_search"}],
]

grants := [f.grant(7, "user:5", "operator"), f.grant(7, "audience:acme", "admin")]

requests := [object.union(
	{"ability": "authorize", "principal": p, "agent": a, "action": step[0], "grants": grants},
	step[1],
) |
	some i, p in principals
	some j, a in agents
	some k in numbers.range(0, 1)
	n := sum([i * 7, j * 3, k])
	step := steps[n % count(steps)]
]

# the general answer for one request: the layers, never owner_decision
general(request) := v if {
	v := main.authorize_verdict with input as request
}

# owner_decision, when it answers, is the general answer; and the decision
# the engine returns is too.
agrees(request) if {
	fast := actions.owner_decision with input as request
	fast == general(request)
}

agrees(request) if {
	not actions.owner_decision with input as request
}

consistent(request) if {
	agrees(request)
	d := main.decision with input as request
	d == general(request)
}

test_owner_decision_equals_general_layers if {
	every request in requests {
		consistent(request)
	}
}

# The grid is not vacuous: the fast path answers allows and denials alike.
test_owner_decision_covers_allow_and_deny if {
	answered := [d |
		some request in requests
		d := actions.owner_decision with input as request
	]
	count([d | some d in answered; d.allow]) > 20
	count([d | some d in answered; not d.allow]) > 20
}

# Both owner shapes take the fast path: a user, and a token on its own agent.
test_owner_decision_answers_user_and_token_owners if {
	request := {"ability": "authorize", "action": "chat", "agent": f.agent7, "grants": []}
	user := actions.owner_decision with input as object.union(request, {"principal": f.user(f.editor)})
	user == {"allow": true, "role": "admin", "denied_by": [], "reasons": []}
	token := actions.owner_decision with input as object.union(request, {"principal": f.token(f.editor, 7, [])})
	token.denied_by == ["token_ceiling"]
	not actions.owner_decision with input as object.union(request, {"principal": f.token(f.editor, 8, null)})
}

# With a role that holds only the implies-all capability, an action whose
# min_role is unknown or whose capability is null, and ranks where admin is
# not the highest (so that the owner can fail agent_role).
odd_config := {
	"implies_all_capability": "manage_options",
	"site_admins_are_agent_admins": true,
	"token_reach": "owner",
	"operator_is_superuser": false,
}

odd_actions := {
	"chat": {"capability": "datamachine_chat", "min_role": "operator"},
	"use_tools": {"capability": "datamachine_use_tools", "min_role": "overlord"},
	"ping": {"capability": null, "min_role": "viewer"},
	"manage_flows": {"capability": "datamachine_manage_flows", "min_role": "root"},
}

odd_roles := {
	"editor": {"datamachine_chat": true, "datamachine_use_tools": false, "datamachine_manage_flows": true, "read": true},
	"boss": {"manage_options": true},
	"author": {"datamachine_chat": true},
}

odd_requests_grid := [object.union(
	{"ability": "authorize", "principal": p, "agent": a, "action": act, "grants": grants},
	t,
) |
	some p in [principals[0], principals[3], principals[5], principals[8]]
	some j, a in agents
	some act in ["chat", "use_tools", "ping", "manage_flows"]
	t := [{}, {"tool": "shell"}][j % 2]
]

test_owner_decision_equals_general_layers_with_other_config if {
	every request in odd_requests_grid {
		consistent(request) with data.agentauthz.config.settings as odd_config
			with data.agentauthz.config.actions as odd_actions
			with data.agentauthz.config.roles as odd_roles
			with data.agentauthz.config.agent_roles as {"viewer": 10, "operator": 20, "admin": 30, "root": 40}
	}
}

# authorize_input_ok is exactly "no input problem" for authorize.
odd_requests := [
	{"ability": "authorize"},
	{"ability": "authorize", "principal": {"kind": "token", "id": "token:1"}},
	{"ability": "authorize", "principal": f.token(f.editor, 7, "read"), "agent": f.agent7, "action": "chat"},
	{"ability": "authorize", "principal": f.token(f.editor, 7, [1]), "agent": f.agent7, "action": "chat"},
	{"ability": "authorize", "principal": f.token(f.editor, false, null), "agent": f.agent7, "action": "chat"},
	{"ability": "authorize", "principal": object.remove(f.token(f.editor, 7, null), ["user"]), "agent": f.agent7, "action": "chat"},
	{"ability": "authorize", "principal": {"kind": "user", "id": "user:3"}, "agent": f.agent7, "action": "chat"},
	{"ability": "authorize", "principal": {"kind": "robot"}, "agent": f.agent7, "action": "chat"},
	{"ability": "authorize", "principal": f.user(f.editor), "agent": f.agent7},
	{"ability": "authorize", "principal": f.user(f.editor), "agent": f.agent7, "action": 7},
	{"ability": "authorize", "principal": f.user(f.editor), "action": "chat"},
	{"ability": "authorize", "principal": f.user(f.editor), "agent": "agent:7", "action": "chat"},
	{"ability": "authorize", "principal": f.user(f.editor), "agent": f.agent7, "action": "chat", "tool": 1},
	{"ability": "authorize", "principal": f.anonymous, "agent": f.agent7, "action": "chat", "tool": ["x"]},
]

input_ok_agrees(request) if {
	ok := {true | main.authorize_input_ok} with input as request
	problems := main.input_problems with input as request
	no_problem := count(problems) == 0
	passes := count(ok) == 1
	no_problem == passes
}

test_authorize_input_ok_matches_input_problems if {
	every request in array.concat(odd_requests, requests) {
		input_ok_agrees(request)
	}
}
