package agentauthz.ceilings_test

import data.agentauthz.ceilings
import data.agentauthz.fixtures_test as f

test_owner_ceiling_role_grants_its_capabilities if {
	ceilings.user_has(f.editor, "datamachine_chat")
	not ceilings.user_has(f.editor, "list_users")
}

test_owner_ceiling_implies_all_grants_everything if {
	ceilings.user_has(f.administrator, "anything_at_all")
}

test_owner_ceiling_unknown_role_grants_nothing if {
	not ceilings.user_has({"id": 9, "roles": ["pirate"], "status": "active"}, "read")
}

test_owner_ceiling_inactive_user_has_nothing if {
	not ceilings.user_has(object.union(f.administrator, {"status": "disabled"}), "read")
}

test_owner_ceiling_any_role_counts if {
	ceilings.user_has({"id": 9, "roles": ["pirate", "subscriber"], "status": "active"}, "read")
}

test_token_ceiling_null_is_owner_ceiling if {
	ceilings.principal_has("datamachine_manage_flows") with input as {"principal": f.token(f.editor, 7, null)}
}

test_token_ceiling_list_is_exactly_those_names if {
	p := f.token(f.editor, 7, ["datamachine_chat"])
	ceilings.principal_has("datamachine_chat") with input as {"principal": p}
	not ceilings.principal_has("read") with input as {"principal": p}
	not ceilings.principal_has("DATAMACHINE_CHAT") with input as {"principal": p}
}

test_token_ceiling_empty_list_denies_everything if {
	p := f.token(f.administrator, 7, [])
	not ceilings.principal_has("read") with input as {"principal": p}
	ceilings.effective_capabilities == [] with input as {"principal": p}
}

test_token_ceiling_never_exceeds_owner if {
	not ceilings.principal_has("list_users") with input as {"principal": f.token(f.editor, 7, ["list_users"])}
}

test_principal_capability_user_is_its_roles if {
	ceilings.principal_has("read") with input as {"principal": f.user(f.subscriber)}
	not ceilings.principal_has("datamachine_chat") with input as {"principal": f.user(f.subscriber)}
}

test_principal_capability_operator_has_everything if {
	ceilings.principal_has("anything") with input as {"principal": f.operator}
}

test_principal_capability_operator_switch_off if {
	not ceilings.principal_has("read") with input as {"principal": f.operator}
		with data.agentauthz.config.settings as object.union(f.settings, {"operator_is_superuser": false})
}

test_principal_capability_audience_and_anonymous_have_nothing if {
	not ceilings.principal_has("read") with input as {"principal": f.audience("audience:acme")}
	not ceilings.principal_has("read") with input as {"principal": f.anonymous}
}

test_known_capabilities_cover_roles_actions_and_abilities if {
	known := ceilings.known_capabilities with data.agentauthz.config.actions as {"x": {"capability": "only_in_actions", "min_role": "viewer"}}
	every cap in {"manage_options", "edit_users", "read", "only_in_actions", "list_users"} {
		cap in known
	}
}

test_effective_capabilities_operator_lists_all_known if {
	caps := ceilings.effective_capabilities with input as {"principal": f.operator}
	count(caps) == count(ceilings.known_capabilities)
}

test_valid_ceiling_shapes if {
	ceilings.valid_ceiling(null)
	ceilings.valid_ceiling([])
	ceilings.valid_ceiling(["read"])
	not ceilings.valid_ceiling(["read", 1])
	not ceilings.valid_ceiling("read")
}
