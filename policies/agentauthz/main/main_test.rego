package agentauthz.main_test

import data.agentauthz.fixtures_test as f
import data.agentauthz.main

decide(request) := d if {
	d := main.decision with input as request
}

denied_for_input(d) if {
	d.allow == false
	d.denied_by == ["input"]
	d.role == null
}

test_missing_principal_denies_with_input_reason if {
	d := decide({"ability": "whoami"})
	denied_for_input(d)
	d.reasons == ["input.principal is missing or not an object"]
}

test_missing_ability_denies_with_input_reason if {
	d := decide({"principal": f.user(f.editor)})
	denied_for_input(d)
	d.reasons == ["input.ability is missing or not a string"]
}

test_non_string_ability_denies_with_input_reason if {
	denied_for_input(decide({"ability": 7, "principal": f.user(f.editor)}))
}

test_unknown_principal_kind_denies_with_input_reason if {
	d := decide({"ability": "whoami", "principal": {"kind": "robot"}})
	denied_for_input(d)
	d.reasons == [`principal.kind robot is not one of anonymous, audience, operator, token, user`]
}

test_token_principal_without_token_denies_with_input_reason if {
	p := object.remove(f.token(f.editor, 7, null), ["token"])
	denied_for_input(decide({"ability": "whoami", "principal": p}))
}

test_token_without_capabilities_key_denies_with_input_reason if {
	p := json.patch(f.token(f.editor, 7, null), [{"op": "remove", "path": "/token/capabilities"}])
	denied_for_input(decide({"ability": "whoami", "principal": p}))
}

test_token_with_malformed_capabilities_denies_with_input_reason if {
	denied_for_input(decide({"ability": "whoami", "principal": f.token(f.editor, 7, "datamachine_chat")}))
	denied_for_input(decide({"ability": "whoami", "principal": f.token(f.editor, 7, [1])}))
}

test_user_principal_without_user_denies_with_input_reason if {
	denied_for_input(decide({"ability": "whoami", "principal": {"kind": "user", "id": "user:3"}}))
}

test_authorize_without_action_denies_with_input_reason if {
	d := decide({"ability": "authorize", "principal": f.user(f.editor), "agent": f.agent7})
	denied_for_input(d)
	d.reasons == ["authorize needs input.action (a string)"]
}

test_authorize_with_non_string_tool_denies_with_input_reason if {
	denied_for_input(decide({
		"ability": "authorize", "action": "chat", "tool": ["web_search"],
		"principal": f.user(f.editor), "agent": f.agent7,
	}))
}

test_agent_scoped_ability_without_agent_denies_with_input_reason if {
	d := decide({"ability": "list-agent-tokens", "principal": f.user(f.editor)})
	denied_for_input(d)
	d.reasons == ["list-agent-tokens needs input.agent (an object)"]
	denied_for_input(decide({"ability": "can-access-agent", "principal": f.user(f.editor)}))
}

test_unknown_minimum_role_denies_with_input_reason if {
	d := decide({"ability": "can-access-agent", "principal": f.user(f.editor), "agent": f.agent7, "minimum_role": "owner"})
	denied_for_input(d)
	d.reasons == [`minimum_role owner is not an agent role`]
	denied_for_input(decide({"ability": "list-accessible-agents", "principal": f.user(f.editor), "minimum_role": "owner"}))
}

test_list_accessible_with_malformed_agents_denies_with_input_reason if {
	denied_for_input(decide({"ability": "list-accessible-agents", "principal": f.user(f.editor), "agents": "all"}))
}

test_create_token_with_malformed_request_denies_with_input_reason if {
	denied_for_input(decide({
		"ability": "create-agent-token", "principal": f.user(f.editor), "agent": f.agent7,
		"token_request": {"capabilities": "datamachine_chat"},
	}))
}

test_create_agent_without_owner_denies_with_input_reason if {
	denied_for_input(decide({"ability": "create-agent", "principal": f.user(f.editor), "resource": {}}))
}

test_decision_is_defined_for_odd_input_types if {
	every odd in [[], "x", 1, null, true, {"principal": [], "ability": {}}, {"principal": "user:3", "ability": "whoami"}] {
		denied_for_input(decide(odd))
	}
}

test_every_problem_is_reported if {
	d := decide({"ability": "authorize", "principal": {"kind": "token", "id": "token:1"}})
	denied_for_input(d)
	count(d.reasons) == 4
}

# If evaluation could not reach a verdict at all, the default still denies.
test_decision_default_is_a_denial if {
	d := main.decision with input as {"ability": "whoami", "principal": f.operator}
		with count as never
	d == {"allow": false, "role": null, "denied_by": ["input"], "reasons": ["the request could not be decided"]}
}

never(_) := 0 if {
	false
}

test_whoami_lists_effective_capabilities if {
	d := decide({"ability": "whoami", "principal": f.user(f.contributor)})
	d.allow == true
	d.role == null
	d.capabilities == ["datamachine_chat", "read"]
}

test_whoami_token_capabilities_are_owner_and_token if {
	d := decide({"ability": "whoami", "principal": f.token(f.editor, 7, ["datamachine_chat", "manage_options"])})
	d.capabilities == ["datamachine_chat"]
}

test_whoami_audience_has_no_capabilities if {
	d := decide({"ability": "whoami", "principal": f.audience("audience:acme")})
	d.allow == true
	d.capabilities == []
}

test_unknown_ability_denies if {
	d := decide({"ability": "launch-rockets", "principal": f.user(f.administrator)})
	d.allow == false
	d.denied_by == ["ability"]
	d.reasons == [`"launch-rockets" is not a known ability`]
}

test_allowed_decision_has_no_denials if {
	d := decide({"ability": "list-users", "principal": f.user(f.administrator)})
	d == {"allow": true, "role": null, "denied_by": [], "reasons": []}
}

test_input_problems_agent_without_id_is_denied if {
	stranger := {"kind": "user", "id": "user:5", "user": {"id": 5, "roles": ["subscriber"], "status": "active"}}
	agent := {"owner_id": 1, "status": "active", "tool_policy": null, "owner": {"id": 1, "roles": ["administrator"], "status": "active"}}
	d := main.decision with input as {"ability": "authorize", "principal": stranger, "agent": agent, "grants": [], "action": "read_jobs"}
	d.allow == false
	d.denied_by == ["input"]
	with_id := main.decision with input as {"ability": "authorize", "principal": stranger, "agent": object.union(agent, {"id": 7}), "grants": [], "action": "read_jobs"}
	with_id.denied_by == ["agent_role"]
}

test_input_problems_candidate_without_id_is_denied if {
	d := main.decision with input as {"ability": "list-accessible-agents", "principal": {"kind": "anonymous", "id": "audience:public"}, "agents": [{"owner_id": 1}], "grants": []}
	d.denied_by == ["input"]
}
