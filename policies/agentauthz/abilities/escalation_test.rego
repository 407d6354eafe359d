package agentauthz.escalation_test

import data.agentauthz.fixtures_test as f
import data.agentauthz.main

decide(request) := d if {
	d := main.decision with input as request
}

# token_on7 is a token of agent 7 (owned by the editor) with caps and an expiry.
token_on7(caps, expires_at) := object.union(f.token(f.editor, 7, caps), {"token": {"id": 12, "agent_id": 7, "capabilities": caps, "expires_at": expires_at}})

grant_by(principal, role, grants) := decide({
	"ability": "grant-agent-access", "principal": principal, "agent": f.agent7,
	"grants": grants, "grant_request": {"role": role},
})

all_action_caps := ["read", "datamachine_chat", "datamachine_use_tools", "datamachine_run_pipelines", "datamachine_manage_flows"]

test_read_token_cannot_grant_public_admin if {
	d := grant_by(token_on7(["read"], null), "admin", [])
	d.allow == false
	d.denied_by == ["grant_ceiling", "token_ceiling"]
}

test_read_token_cannot_grant_even_viewer_without_management_capability if {
	d := grant_by(token_on7(["read"], null), "viewer", [])
	d.denied_by == ["token_ceiling"]
}

test_grant_ceiling_names_the_missing_powers if {
	d := grant_by(token_on7(["read", "datamachine_manage_agents", "datamachine_chat"], null), "operator", [])
	d.denied_by == ["grant_ceiling"]
	d.reasons == ["the operator role reaches capabilities the token does not hold: datamachine_run_pipelines, datamachine_use_tools"]
}

test_token_holding_the_role_powers_may_grant_it if {
	caps := array.concat(all_action_caps, ["datamachine_manage_agents"])
	grant_by(token_on7(caps, null), "admin", []).allow == true
	grant_by(token_on7(["read", "datamachine_manage_agents"], null), "viewer", []).allow == true
}

test_full_token_may_grant_admin if {
	grant_by(token_on7(null, null), "admin", []).allow == true
}

test_action_capability_the_owner_lacks_is_not_required if {
	# agent 10 belongs to the author, who lacks run_pipelines and manage_flows
	agent10 := {"id": 10, "owner_id": 4, "status": "active", "tool_policy": null, "owner": f.author}
	caps := ["read", "datamachine_chat", "datamachine_use_tools", "datamachine_manage_agents"]
	tok := object.union(f.token(f.author, 10, caps), {"token": {"id": 12, "agent_id": 10, "capabilities": caps}})
	d := decide({"ability": "grant-agent-access", "principal": tok, "agent": agent10, "grants": [], "grant_request": {"role": "admin"}})
	d.allow == true
}

test_nobody_grants_above_its_own_role if {
	# a bundle where operators may grant: an operator grantee still cannot grant admin
	abilities := object.union(data.agentauthz.config.abilities, {"grant-agent-access": {"capability": "read", "min_role": "operator"}})
	d := grant_by(f.user(f.subscriber), "admin", [f.grant(7, "user:5", "operator")]) with data.agentauthz.config.abilities as abilities
	d.denied_by == ["grant_ceiling"]
	grant_by(f.user(f.subscriber), "operator", [f.grant(7, "user:5", "operator")]).allow == true with data.agentauthz.config.abilities as abilities
	grant_by(f.user(f.subscriber), "viewer", [f.grant(7, "user:5", "operator")]).allow == true with data.agentauthz.config.abilities as abilities
}

test_grant_without_a_known_role_is_input if {
	d := decide({"ability": "grant-agent-access", "principal": f.user(f.editor), "agent": f.agent7, "grants": []})
	d.denied_by == ["input"]
	grant_by(f.user(f.editor), "owner", []).denied_by == ["input"]
}

update_by(principal, agent, change) := decide({
	"ability": "update-agent", "principal": principal, "agent": agent,
	"grants": [], "agent_update": change,
})

manager := ["read", "datamachine_manage_agents"]

allow_calc := {"mode": "allow", "tools": ["calculator"]}

deny_shell := {"mode": "deny", "tools": ["shell"]}

test_read_token_cannot_clear_the_tool_policy if {
	agent := object.union(f.agent7, {"tool_policy": allow_calc})
	d := update_by(token_on7(["read"], null), agent, {"tool_policy": null})
	d.denied_by == ["token_ceiling", "tool_ceiling"]
}

test_token_may_narrow_but_not_widen_its_tool_policy if {
	agent := object.union(f.agent7, {"tool_policy": {"mode": "allow", "tools": ["calculator", "web_search"]}})
	update_by(token_on7(manager, null), agent, {"tool_policy": allow_calc}).allow == true
	update_by(token_on7(manager, null), agent, {"tool_policy": {"mode": "allow", "tools": ["shell"]}}).denied_by == ["tool_ceiling"]
	update_by(token_on7(manager, null), agent, {"tool_policy": deny_shell}).denied_by == ["tool_ceiling"]
	update_by(token_on7(manager, null), agent, {"tool_policy": null}).denied_by == ["tool_ceiling"]
}

test_token_narrowing_a_deny_list if {
	agent := object.union(f.agent7, {"tool_policy": deny_shell})
	update_by(token_on7(manager, null), agent, {"tool_policy": {"mode": "deny", "tools": ["shell", "web"]}}).allow == true
	update_by(token_on7(manager, null), agent, {"tool_policy": {"mode": "deny", "tools": ["web"]}}).denied_by == ["tool_ceiling"]
	update_by(token_on7(manager, null), agent, {"tool_policy": allow_calc}).allow == true
	update_by(token_on7(manager, null), agent, {"tool_policy": {"mode": "allow", "tools": ["shell"]}}).denied_by == ["tool_ceiling"]
}

test_token_may_set_any_policy_on_an_unrestricted_agent if {
	update_by(token_on7(manager, null), f.agent7, {"tool_policy": deny_shell}).allow == true
	update_by(token_on7(manager, null), f.agent7, {"tool_policy": null}).allow == true
}

test_owner_and_site_admin_govern_the_tool_policy if {
	agent := object.union(f.agent7, {"tool_policy": allow_calc})
	update_by(f.user(f.editor), agent, {"tool_policy": null}).allow == true
	update_by(f.user(f.administrator), agent, {"tool_policy": null}).allow == true
	update_by(f.operator, agent, {"tool_policy": null}).allow == true
}

admin_grant_for_subscriber := [f.grant(7, "user:5", "admin")]

test_admin_grantee_may_only_narrow_the_tool_policy if {
	agent := object.union(f.agent7, {"tool_policy": {"mode": "allow", "tools": ["calculator", "web_search"]}})
	grantee_update(agent, {"tool_policy": allow_calc}).allow == true
	grantee_update(agent, {"tool_policy": null}).denied_by == ["tool_ceiling"]
	grantee_update(agent, {"tool_policy": deny_shell}).denied_by == ["tool_ceiling"]
}

test_admin_grantee_may_deactivate_but_not_reactivate if {
	grantee_update(f.agent7, {"status": "inactive"}).allow == true
	inactive := object.union(f.agent7, {"status": "inactive"})
	grantee_update(inactive, {"status": "active"}).denied_by == ["status_ceiling"]
}

grantee_update(agent, change) := decide({
	"ability": "update-agent", "principal": f.user(f.subscriber), "agent": agent,
	"grants": admin_grant_for_subscriber, "agent_update": change,
})

create_by(principal, tool_policy, creator) := decide(object.union(
	{
		"ability": "create-agent", "principal": principal, "resource": {"owner_id": 3},
		"agent_request": {"tool_policy": tool_policy},
	},
	creator,
))

creator7(tool_policy) := {"creator_agent": {"id": 7, "tool_policy": tool_policy}}

test_only_an_owner_wide_token_creates_agents if {
	create_by(token_on7(null, null), null, creator7(null)).allow == true
	d := create_by(token_on7(["read", "datamachine_create_agents"], null), null, creator7(null))
	d.denied_by == ["token_ceiling"]
}

test_token_creates_agents_only_within_its_tool_policy if {
	create_by(token_on7(null, null), allow_calc, creator7(allow_calc)).allow == true
	create_by(token_on7(null, null), {"mode": "allow", "tools": []}, creator7(allow_calc)).allow == true
	create_by(token_on7(null, null), null, creator7(allow_calc)).denied_by == ["tool_ceiling"]
	create_by(token_on7(null, null), deny_shell, creator7(allow_calc)).denied_by == ["tool_ceiling"]
}

test_token_without_its_creator_agent_creates_nothing_that_permits_a_tool if {
	create_by(token_on7(null, null), allow_calc, {}).denied_by == ["tool_ceiling"]
}

test_users_create_agents_with_any_tool_policy if {
	create_by(f.user(f.editor), null, {}).allow == true
}

test_token_may_deactivate_but_not_reactivate if {
	update_by(token_on7(manager, null), f.agent7, {"status": "inactive"}).allow == true
	inactive := object.union(f.agent7, {"status": "inactive"})
	update_by(token_on7(manager, null), inactive, {"status": "active"}).denied_by == ["status_ceiling"]
	update_by(f.user(f.editor), inactive, {"status": "active"}).allow == true
}

test_update_agent_needs_the_change if {
	decide({"ability": "update-agent", "principal": f.user(f.editor), "agent": f.agent7, "grants": []}).denied_by == ["input"]
}

on7(ability, principal, extra) := decide(object.union({"ability": ability, "principal": principal, "agent": f.agent7, "grants": []}, extra))

test_read_token_cannot_revoke_another_token_or_delete_the_agent if {
	on7("revoke-agent-token", token_on7(["read"], null), {"target_token": {"id": 99}}).denied_by == ["token_ceiling"]
	on7("delete-agent", token_on7(["read"], null), {}).denied_by == ["token_ceiling"]
	on7("revoke-agent-access", token_on7(["read"], null), {}).denied_by == ["token_ceiling"]
	on7("revoke-agent-token", token_on7(manager, null), {"target_token": {"id": 99}}).allow == true
	on7("delete-agent", token_on7(manager, null), {}).allow == true
}

test_token_may_always_revoke_itself if {
	on7("revoke-agent-token", token_on7(["read"], null), {"target_token": {"id": 12}}).allow == true
}

test_owner_wide_token_holds_management_powers if {
	on7("delete-agent", token_on7(null, null), {}).allow == true
}

mint_by(principal, expires_at) := on7("create-agent-token", principal, {"token_request": {"capabilities": ["read"], "expires_at": expires_at}})

test_expiring_token_cannot_mint_an_immortal_one if {
	d := mint_by(token_on7(["read"], "2026-12-01T10:00:00Z"), null)
	d.denied_by == ["mint_lifetime"]
	d.reasons == ["the requested token would outlive the minter, which expires at 2026-12-01T10:00:00Z"]
}

test_expiring_token_mints_within_its_lifetime if {
	mint_by(token_on7(["read"], "2026-12-01T10:00:00Z"), "2026-12-01T09:59:59.5Z").allow == true
	mint_by(token_on7(["read"], "2026-12-01T10:00:00Z"), "2026-12-01T10:00:00Z").allow == true
	mint_by(token_on7(["read"], "2026-12-01T10:00:00Z"), "2026-12-01T10:00:00.000001Z").denied_by == ["mint_lifetime"]
}

test_immortal_minters_mint_anything if {
	mint_by(token_on7(["read"], null), null).allow == true
	mint_by(f.user(f.editor), null).allow == true
}

test_malformed_times_are_input if {
	mint_by(token_on7(["read"], null), "tomorrow").denied_by == ["input"]
	mint_by(token_on7(["read"], 5), null).denied_by == ["input"]
}

user_change(ability, principal, request) := decide({"ability": ability, "principal": principal, "user_request": request})

# A user-manager role: may edit users but does not imply every capability.
roles_with_manager := object.union(data.agentauthz.config.roles, {"user_manager": {"edit_users": true, "create_users": true, "read": true}})

manager_user := {"id": 20, "roles": ["user_manager"], "status": "active"}

test_user_manager_cannot_hand_out_roles_it_does_not_hold if {
	d := user_change("update-user", f.user(manager_user), {"roles": ["administrator"]}) with data.agentauthz.config.roles as roles_with_manager
	d.denied_by == ["role_ceiling"]
	c := user_change("create-user", f.user(manager_user), {"roles": ["editor"]}) with data.agentauthz.config.roles as roles_with_manager
	c.denied_by == ["role_ceiling"]
	user_change("update-user", f.user(manager_user), {"roles": ["subscriber"]}).allow == true with data.agentauthz.config.roles as roles_with_manager
}

test_reenabling_a_user_confers_its_roles if {
	target := {"id": 1, "roles": ["administrator"], "status": "disabled"}
	d := decide({"ability": "update-user", "principal": f.user(manager_user), "user_request": {"status": "active"}, "target_user": target}) with data.agentauthz.config.roles as roles_with_manager
	d.denied_by == ["role_ceiling"]
	renamed := decide({"ability": "update-user", "principal": f.user(manager_user), "user_request": {"name": "x"}, "target_user": target}) with data.agentauthz.config.roles as roles_with_manager
	renamed.allow == true
}

test_token_never_confers_user_roles if {
	admin_token := object.union(f.token(f.administrator, 9, null), {"token": {"id": 12, "agent_id": 9, "capabilities": null}})
	user_change("update-user", admin_token, {"roles": ["subscriber"]}).denied_by == ["role_ceiling"]
	user_change("create-user", admin_token, {"roles": ["contributor"]}).denied_by == ["role_ceiling"]
	target := {"id": 5, "roles": ["subscriber"], "status": "disabled"}
	reenable := decide({"ability": "update-user", "principal": admin_token, "user_request": {"status": "active"}, "target_user": target})
	reenable.denied_by == ["role_ceiling"]
	user_change("update-user", admin_token, {"status": "disabled"}).allow == true
	user_change("update-user", admin_token, {"roles": []}).allow == true
}

test_site_admin_hands_out_any_role if {
	user_change("update-user", f.user(f.administrator), {"roles": ["administrator"]}).allow == true
	user_change("create-user", f.operator, {"roles": ["administrator"]}).allow == true
}

test_user_changes_need_the_request if {
	decide({"ability": "create-user", "principal": f.user(f.administrator)}).denied_by == ["input"]
}
