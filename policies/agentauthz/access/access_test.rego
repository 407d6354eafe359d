package agentauthz.access_test

import data.agentauthz.fixtures_test as f
import data.agentauthz.main

decide(request) := d if {
	d := main.decision with input as request
}

check(principal, agent, grants) := decide({
	"ability": "can-access-agent", "principal": principal, "agent": agent, "grants": grants,
})

role_of(principal, agent, grants) := check(principal, agent, grants).role

test_owner_is_admin if {
	role_of(f.user(f.editor), f.agent7, []) == "admin"
}

test_stranger_has_no_role if {
	d := check(f.user(f.subscriber), f.agent7, [])
	d.role == null
	d.allow == false
	d.denied_by == ["agent_role"]
	d.reasons == ["can-access-agent needs the viewer role on agent 7; the caller has none"]
}

test_user_grant_gives_its_role if {
	role_of(f.user(f.subscriber), f.agent7, [f.grant(7, "user:5", "operator")]) == "operator"
}

test_best_grant_wins if {
	grants := [
		f.grant(7, "user:5", "viewer"),
		f.grant(7, "audience:acme", "admin"),
		f.grant(7, "audience:public", "operator"),
	]
	p := object.union(f.user(f.subscriber), {"audiences": ["audience:acme"]})
	role_of(p, f.agent7, grants) == "admin"
}

test_grant_on_another_agent_does_not_count if {
	role_of(f.user(f.subscriber), f.agent7, [f.grant(8, "user:5", "admin")]) == null
}

test_grant_for_another_principal_does_not_count if {
	role_of(f.user(f.subscriber), f.agent7, [f.grant(7, "user:6", "admin"), f.grant(7, "audience:acme", "admin")]) == null
}

test_unknown_grant_role_denies if {
	d := check(f.user(f.subscriber), f.agent7, [f.grant(7, "user:5", "owner")])
	d.allow == false
	d.role == null
}

test_public_audience_sees_only_public_grants if {
	grants := [f.grant(7, "audience:public", "viewer"), f.grant(7, "audience:acme", "admin"), f.grant(7, "user:5", "admin")]
	anon := object.union(f.anonymous, {"audiences": ["audience:acme"]})
	role_of(anon, f.agent7, grants) == "viewer"
	role_of(f.anonymous, f.agent8, grants) == null
}

test_audience_principal_uses_its_id_audiences_and_public if {
	p := object.union(f.audience("audience:acme"), {"audiences": ["audience:staff"]})
	role_of(p, f.agent7, [f.grant(7, "audience:acme", "operator")]) == "operator"
	role_of(p, f.agent7, [f.grant(7, "audience:staff", "admin")]) == "admin"
	role_of(p, f.agent7, [f.grant(7, "audience:public", "viewer")]) == "viewer"
	role_of(p, f.agent7, [f.grant(7, "audience:other", "viewer")]) == null
}

test_site_admin_is_admin_everywhere if {
	role_of(f.user(f.administrator), f.agent7, []) == "admin"
}

test_site_admin_switch_off if {
	d := check(f.user(f.administrator), f.agent7, []) with data.agentauthz.config.settings as object.union(f.settings, {"site_admins_are_agent_admins": false})
	d.role == null
}

test_operator_is_admin_everywhere if {
	role_of(f.operator, f.agent7, []) == "admin"
}

test_operator_switch_off if {
	d := check(f.operator, f.agent7, []) with data.agentauthz.config.settings as object.union(f.settings, {"operator_is_superuser": false})
	d.role == null
}

test_token_is_admin_on_its_own_agent if {
	role_of(f.token(f.editor, 7, ["datamachine_chat"]), f.agent7, []) == "admin"
}

test_token_reach_agent_has_nothing_on_sibling_agents if {
	role_of(f.token(f.editor, 7, null), f.agent8, []) == null
	role_of(f.token(f.subscriber, 7, null), f.agent8, [f.grant(8, "user:5", "admin")]) == null
}

test_token_reach_owner_switch_widens if {
	owner_reach := object.union(f.settings, {"token_reach": "owner"})
	d := check(f.token(f.editor, 7, null), f.agent8, []) with data.agentauthz.config.settings as owner_reach
	d.role == "admin"
	g := check(f.token(f.subscriber, 7, null), f.agent8, [f.grant(8, "user:5", "operator")]) with data.agentauthz.config.settings as owner_reach
	g.role == "operator"
}

test_site_admin_token_needs_implies_all_in_its_ceiling if {
	owner_reach := object.union(f.settings, {"token_reach": "owner"})
	wide := check(f.token(f.administrator, 9, null), f.agent7, []) with data.agentauthz.config.settings as owner_reach
	wide.role == "admin"
	narrow := check(f.token(f.administrator, 9, ["datamachine_chat"]), f.agent7, []) with data.agentauthz.config.settings as owner_reach
	narrow.role == null
	listed := check(f.token(f.administrator, 9, ["manage_options"]), f.agent7, []) with data.agentauthz.config.settings as owner_reach
	listed.role == "admin"
}

test_site_admin_token_reach_agent_is_admin_only_on_its_agent if {
	# a site administrator's token on an agent it does not own still acts for that agent
	own := check(f.token(f.administrator, 7, null), f.agent7, [])
	own.role == "admin"
	other := check(f.token(f.administrator, 7, null), f.agent8, [])
	other.role == null
}

test_can_access_minimum_role if {
	grants := [f.grant(7, "user:5", "operator")]
	decide({"ability": "can-access-agent", "principal": f.user(f.subscriber), "agent": f.agent7, "grants": grants, "minimum_role": "operator"}).allow == true
	d := decide({"ability": "can-access-agent", "principal": f.user(f.subscriber), "agent": f.agent7, "grants": grants, "minimum_role": "admin"})
	d.allow == false
	d.role == "operator"
	d.denied_by == ["agent_role"]
}

test_can_access_null_minimum_role_is_viewer if {
	d := decide({"ability": "can-access-agent", "principal": f.user(f.subscriber), "agent": f.agent7, "minimum_role": null, "grants": [f.grant(7, "user:5", "viewer")]})
	d.allow == true
}

candidates := [f.agent7, f.agent8, f.agent9]

mixed_grants := [
	f.grant(7, "user:5", "viewer"),
	f.grant(8, "audience:public", "operator"),
	f.grant(9, "user:5", "bogus"),
]

test_list_accessible_equals_can_access if {
	every minimum in ["viewer", "operator", "admin"] {
		every p in [f.user(f.subscriber), f.user(f.editor), f.anonymous, f.token(f.editor, 7, null), f.user(f.administrator)] {
			listed := decide({
				"ability": "list-accessible-agents", "principal": p, "agents": candidates,
				"grants": mixed_grants, "minimum_role": minimum,
			})
			listed.allow == true
			ids := {a.agent_id | some a in listed.accessible}
			checked := {agent.id |
				some agent in candidates
				decide({
					"ability": "can-access-agent", "principal": p, "agent": agent,
					"grants": mixed_grants, "minimum_role": minimum,
				}).allow
			}
			ids == checked
		}
	}
}

test_list_accessible_reports_roles if {
	d := decide({"ability": "list-accessible-agents", "principal": f.user(f.subscriber), "agents": candidates, "grants": mixed_grants})
	d.accessible == [{"agent_id": 7, "role": "viewer"}, {"agent_id": 8, "role": "operator"}]
	d.scope == "related"
	d.denied_by == []
}

test_list_accessible_scope_all_for_site_admin_and_operator if {
	decide({"ability": "list-accessible-agents", "principal": f.user(f.administrator), "agents": []}).scope == "all"
	decide({"ability": "list-accessible-agents", "principal": f.operator}).scope == "all"
}

test_list_accessible_scope_for_site_admin_token_follows_reach if {
	p := f.token(f.administrator, 9, null)
	decide({"ability": "list-accessible-agents", "principal": p}).scope == "related"
	d := decide({"ability": "list-accessible-agents", "principal": p}) with data.agentauthz.config.settings as object.union(f.settings, {"token_reach": "owner"})
	d.scope == "all"
}
