package agentauthz.abilities_test

import data.agentauthz.fixtures_test as f
import data.agentauthz.main

decide(request) := d if {
	d := main.decision with input as request
}

on_agent7(ability, principal, grants) := decide({"ability": ability, "principal": principal, "agent": f.agent7, "grants": grants})

operator_grant := [f.grant(7, "user:5", "operator")]

viewer_grant := [f.grant(7, "user:5", "viewer")]

test_operator_grant_lists_tokens_but_cannot_create if {
	on_agent7("list-agent-tokens", f.user(f.subscriber), operator_grant).allow == true
	create := on_agent7("create-agent-token", f.user(f.subscriber), operator_grant)
	create.allow == false
	"agent_role" in create.denied_by
	create.role == "operator"
	revoke := on_agent7("revoke-agent-token", f.user(f.subscriber), operator_grant)
	revoke.denied_by == ["agent_role"]
}

test_viewer_grant_shows_agent_but_cannot_list_tokens if {
	on_agent7("show-agent", f.user(f.subscriber), viewer_grant).allow == true
	on_agent7("can-access-agent", f.user(f.subscriber), viewer_grant).allow == true
	d := on_agent7("list-agent-tokens", f.user(f.subscriber), viewer_grant)
	d.allow == false
	d.reasons == ["list-agent-tokens needs the operator role on agent 7; the caller has viewer"]
}

test_admin_grant_creates_and_revokes_tokens if {
	admin_grant := [f.grant(7, "user:5", "admin")]
	on_agent7("revoke-agent-token", f.user(f.subscriber), admin_grant).allow == true
	decide({
		"ability": "grant-agent-access", "principal": f.user(f.subscriber), "agent": f.agent7,
		"grants": admin_grant, "grant_request": {"role": "admin"},
	}).allow == true
}

test_ability_capability_missing_denies if {
	d := decide({"ability": "list-users", "principal": f.user(f.editor)})
	d.allow == false
	d.denied_by == ["capability"]
	d.reasons == ["list-users requires the capability list_users"]
}

test_ability_capability_audience_denied if {
	d := on_agent7("show-agent", f.audience("audience:acme"), [f.grant(7, "audience:acme", "admin")])
	d.denied_by == ["capability"]
}

test_ability_token_ceiling_denies if {
	d := on_agent7("show-agent", f.token(f.editor, 7, ["datamachine_chat"]), [])
	d.allow == false
	d.denied_by == ["token_ceiling"]
	d.reasons == ["token ceiling does not include read"]
}

test_ability_owner_ceiling_denies_token if {
	d := decide({"ability": "list-users", "principal": f.token(f.editor, 7, ["list_users"])})
	d.denied_by == ["owner_ceiling"]
}

test_ability_reports_every_failing_layer if {
	d := decide({"ability": "list-users", "principal": f.token(f.editor, 7, [])})
	d.denied_by == ["owner_ceiling", "token_ceiling"]
	count(d.reasons) == 2
}

test_restricted_token_cannot_mint_wider_token if {
	p := f.token(f.editor, 7, ["read", "datamachine_chat"])
	d := decide({
		"ability": "create-agent-token", "principal": p, "agent": f.agent7,
		"token_request": {"capabilities": ["datamachine_chat", "datamachine_use_tools"]},
	})
	d.allow == false
	d.denied_by == ["mint_ceiling"]
	d.reasons == ["the requested token would exceed the minter's capabilities: datamachine_use_tools"]
}

test_restricted_token_cannot_mint_owner_wide_token if {
	p := f.token(f.editor, 7, ["read"])
	d := decide({"ability": "create-agent-token", "principal": p, "agent": f.agent7, "token_request": {"capabilities": null}})
	d.denied_by == ["mint_ceiling"]
}

test_restricted_token_mints_narrower_token if {
	p := f.token(f.editor, 7, ["read", "datamachine_chat"])
	decide({"ability": "create-agent-token", "principal": p, "agent": f.agent7, "token_request": {"capabilities": ["datamachine_chat"]}}).allow == true
}

test_owner_mints_owner_wide_token if {
	decide({"ability": "create-agent-token", "principal": f.user(f.editor), "agent": f.agent7}).allow == true
	decide({"ability": "create-agent-token", "principal": f.token(f.editor, 7, null), "agent": f.agent7, "token_request": {"capabilities": null}}).allow == true
}

test_admin_granted_user_cannot_mint_owner_wide_token if {
	grants := [f.grant(7, "user:6", "admin")]
	narrow := decide({"ability": "create-agent-token", "principal": f.user(f.contributor), "agent": f.agent7, "grants": grants, "token_request": {"capabilities": null}})
	narrow.allow == false
	narrow.denied_by == ["mint_ceiling"]
	decide({"ability": "create-agent-token", "principal": f.user(f.contributor), "agent": f.agent7, "grants": grants, "token_request": {"capabilities": ["datamachine_chat"]}}).allow == true
}

test_site_admin_mints_owner_wide_token if {
	decide({"ability": "create-agent-token", "principal": f.user(f.administrator), "agent": f.agent7, "token_request": {"capabilities": null}}).allow == true
}

test_create_agent_for_self if {
	decide({"ability": "create-agent", "principal": f.user(f.author), "resource": {"owner_id": 4}}).allow == true
}

test_create_agent_for_someone_else_is_owner_mismatch if {
	d := decide({"ability": "create-agent", "principal": f.user(f.author), "resource": {"owner_id": 3}})
	d.allow == false
	d.denied_by == ["owner_mismatch"]
	d.reasons == ["only a site administrator may create an agent owned by user 3"]
}

test_create_agent_site_admin_and_operator_for_anyone if {
	decide({"ability": "create-agent", "principal": f.user(f.administrator), "resource": {"owner_id": 3}}).allow == true
	decide({"ability": "create-agent", "principal": f.operator, "resource": {"owner_id": 3}}).allow == true
}

test_create_agent_needs_capability if {
	d := decide({"ability": "create-agent", "principal": f.user(f.subscriber), "resource": {"owner_id": 5}})
	d.denied_by == ["capability"]
}

test_create_agent_operator_without_site_admin_switch if {
	d := decide({"ability": "create-agent", "principal": f.operator, "resource": {"owner_id": 3}}) with data.agentauthz.config.settings as object.union(f.settings, {"site_admins_are_agent_admins": false})
	d.allow == true
}
