package agentauthz.actions_test

import data.agentauthz.fixtures_test as f
import data.agentauthz.main

authorize(principal, action, agent, extra) := d if {
	request := {"ability": "authorize", "action": action, "principal": principal, "agent": agent, "grants": []}
	d := main.decision with input as object.union(request, extra)
}

test_authorize_owner_token_chats if {
	d := authorize(f.token(f.editor, 7, null), "chat", f.agent7, {})
	d == {"allow": true, "role": "admin", "denied_by": [], "reasons": []}
}

test_authorize_unknown_action if {
	d := authorize(f.user(f.editor), "teleport", f.agent7, {})
	d.denied_by == ["unknown_action"]
	d.reasons == [`"teleport" is not a known action`]
}

test_authorize_agent_role if {
	d := authorize(f.user(f.subscriber), "chat", f.agent7, {"grants": [f.grant(7, "user:5", "viewer")]})
	d.denied_by == ["agent_role"]
	d.role == "viewer"
	d.reasons == ["chat needs the operator role on agent 7; the caller has viewer"]
}

test_authorize_audience_operator_grant_chats if {
	d := authorize(f.audience("audience:acme"), "chat", f.agent7, {"grants": [f.grant(7, "audience:acme", "operator")]})
	d.allow == true
}

test_authorize_agent_status_inactive_agent if {
	d := authorize(f.user(f.editor), "chat", object.union(f.agent7, {"status": "inactive"}), {})
	d.denied_by == ["agent_status"]
}

test_authorize_agent_status_missing_owner if {
	d := authorize(f.user(f.editor), "chat", object.remove(f.agent7, ["owner"]), {})
	d.denied_by == ["agent_status", "owner_ceiling"]
}

test_authorize_owner_ceiling if {
	agent := {"id": 10, "owner_id": 5, "status": "active", "tool_policy": null, "owner": f.subscriber}
	d := authorize(f.operator, "chat", agent, {})
	d.denied_by == ["owner_ceiling"]
	d.reasons == ["the agent's owner lacks datamachine_chat"]
}

test_authorize_tool_policy if {
	agent := object.union(f.agent7, {"tool_policy": {"mode": "deny", "tools": ["shell"]}})
	d := authorize(f.token(f.editor, 7, null), "use_tools", agent, {"tool": "shell"})
	d.denied_by == ["tool_policy"]
	d.reasons == ["agent 7's tool policy blocks shell"]
	authorize(f.token(f.editor, 7, null), "use_tools", agent, {"tool": "web_search"}).allow == true
}

test_authorize_token_ceiling if {
	d := authorize(f.token(f.editor, 7, ["datamachine_chat"]), "use_tools", f.agent7, {})
	d.denied_by == ["token_ceiling"]
	d.reasons == ["token ceiling does not include datamachine_use_tools"]
}

test_authorize_token_ceiling_empty_list_denies_everything if {
	every action in ["chat", "use_tools", "read_jobs"] {
		authorize(f.token(f.editor, 7, []), action, f.agent7, {}).denied_by == ["token_ceiling"]
	}
}

test_authorize_reports_every_failing_layer if {
	agent := {
		"id": 8, "owner_id": 3, "status": "inactive",
		"tool_policy": {"mode": "allow", "tools": []},
		"owner": object.union(f.editor, {"status": "disabled"}),
	}
	d := authorize(f.token(f.editor, 7, []), "use_tools", agent, {"tool": "shell"})
	d.denied_by == ["agent_role", "agent_status", "owner_ceiling", "token_ceiling", "tool_policy"]
	count(d.reasons) == 5
}

test_authorize_action_without_capability if {
	d := authorize(f.token(f.editor, 7, []), "ping", f.agent7, {}) with data.agentauthz.config.actions as {"ping": {"capability": null, "min_role": "viewer"}}
	d.allow == true
}
