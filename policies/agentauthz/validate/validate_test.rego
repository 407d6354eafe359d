package agentauthz.validate_test

import data.agentauthz.config
import data.agentauthz.fixtures_test as f
import data.agentauthz.validate

test_errors_default_bundle_is_valid if {
	count(validate.errors) == 0
}

test_errors_missing_config if {
	"data.agentauthz.config is missing or not an object" in validate.errors with data.agentauthz.config as "nope"
}

test_errors_missing_settings_key if {
	errs := validate.errors with data.agentauthz.config.settings as object.remove(f.settings, ["token_reach"])
	errs == {"config.settings.token_reach is missing"}
}

test_errors_settings_not_object if {
	"config.settings is missing or not an object" in validate.errors with data.agentauthz.config.settings as []
}

test_errors_settings_wrong_types if {
	errs := validate.errors with data.agentauthz.config.settings as object.union(f.settings, {"operator_is_superuser": "yes", "token_reach": "everywhere"})
	errs == {
		"config.settings.operator_is_superuser must be a boolean",
		`config.settings.token_reach must be "agent" or "owner", not "everywhere"`,
	}
}

test_errors_agent_roles_not_numbers if {
	errs := validate.errors with data.agentauthz.config.agent_roles as {"viewer": 1, "operator": "2", "admin": 3}
	"config.agent_roles.operator must be a number" in errs
}

test_errors_agent_roles_missing_admin_and_empty if {
	"config.agent_roles must define \"admin\"" in validate.errors with data.agentauthz.config.agent_roles as {"viewer": 1, "operator": 2}
	"config.agent_roles must be a non-empty object of role ranks" in validate.errors with data.agentauthz.config.agent_roles as {}
}

test_errors_agent_roles_ranks_distinct_and_admin_highest if {
	errs := validate.errors with data.agentauthz.config.agent_roles as {"viewer": 1, "operator": 4, "admin": 1}
	"config.agent_roles ranks must be distinct" in errs
	"config.agent_roles.operator outranks admin; admin must be the highest role" in errs
}

test_errors_roles_not_objects_of_booleans if {
	errs := validate.errors with data.agentauthz.config.roles as {"editor": ["read"], "author": {"read": "yes"}, "subscriber": {"read": true}}
	errs == {"config.roles.editor must be an object of booleans", "config.roles.author must be an object of booleans"}
	"config.roles must be an object" in validate.errors with data.agentauthz.config.roles as []
}

test_errors_actions_missing_keys if {
	errs := validate.errors with data.agentauthz.config.actions as {"chat": {"capability": "datamachine_chat"}, "bad": 1}
	errs == {"config.actions.chat is missing min_role", "config.actions.bad must be an object"}
}

test_errors_actions_need_known_role if {
	errs := validate.errors with data.agentauthz.config.actions as {"chat": {"capability": "datamachine_chat", "min_role": "owner"}, "ping": {"capability": null, "min_role": null}}
	errs == {"config.actions.chat.min_role owner is not an agent role", "config.actions.ping.min_role null is not an agent role"}
}

test_errors_abilities_unknown_role_and_bad_capability if {
	abilities := object.union(config.abilities, {"show-agent": {"capability": 7, "min_role": "superviewer"}})
	errs := validate.errors with data.agentauthz.config.abilities as abilities
	errs == {"config.abilities.show-agent.capability must be a string or null", "config.abilities.show-agent.min_role superviewer is not an agent role"}
}

test_errors_tables_not_objects if {
	"config.abilities must be an object" in validate.errors with data.agentauthz.config.abilities as null
}

test_errors_token_capability_not_a_string if {
	abilities := object.union(config.abilities, {"delete-agent": {"capability": "read", "min_role": "admin", "token_capability": 7}})
	"config.abilities.delete-agent.token_capability must be a string or null" in validate.errors with data.agentauthz.config.abilities as abilities
}
