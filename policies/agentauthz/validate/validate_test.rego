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

route_errors(rs) := errs if {
	errs := validate.errors with data.agentauthz.config.routes as rs
}

test_errors_routes_not_a_list if {
	route_errors({"a": 1}) == {"config.routes must be a list of routes"}
}

test_errors_routes_entry_not_object if {
	route_errors(["x"]) == {"config.routes[0] must be an object"}
}

test_errors_routes_missing_and_unknown_keys if {
	route_errors([{"path": "/a", "verb": "x"}]) == {
		"config.routes[0] is missing method",
		"config.routes[0] is missing action",
		`config.routes[0] has unknown key "verb"`,
	}
}

test_errors_routes_types_and_method if {
	route_errors([{"method": "post", "path": "/a", "action": 1}]) == {
		`config.routes[0].method "post" must be an upper-case HTTP method`,
		"config.routes[0].action must be a string",
	}
}

test_errors_routes_bad_paths if {
	every path in ["a/b", "/a//b", "/a/", "/a/../b", "/a/x{y}", "/{A}", ""] {
		route_errors([{"method": "GET", "path": path, "action": "chat"}]) == {sprintf(`config.routes[0].path %q must be "/" or /segment/... with literal or {name} segments`, [path])}
	}
}

test_errors_routes_duplicate_parameter if {
	route_errors([{"method": "GET", "path": "/{a}/{a}", "action": "chat"}]) == {`config.routes[0].path "/{a}/{a}" names parameter a twice`}
}

test_errors_routes_unbound_parameter if {
	route_errors([{"method": "GET", "path": "/{a}", "agent": "{b}", "action": "{c}"}]) == {
		`config.routes[0].agent "{b}" names no parameter of the path`,
		`config.routes[0].action "{c}" names no parameter of the path`,
	}
}

test_errors_routes_unknown_action if {
	route_errors([{"method": "GET", "path": "/", "action": "fly"}]) == {`config.routes[0].action "fly" is not a known action`}
}

test_errors_routes_tool_and_header if {
	route_errors([{"method": "GET", "path": "/", "action": "chat", "tool": "x", "tool_header": "X-Tool"}]) == {"config.routes[0] names both tool and tool_header"}
	route_errors([{"method": "GET", "path": "/", "action": "chat", "tool_header": "X Tool"}]) == {`config.routes[0].tool_header "X Tool" must be a header name`}
	route_errors([{"method": "GET", "path": "/", "action": "chat", "tool_header": "Authorization"}]) == {`config.routes[0].tool_header "Authorization" carries credentials and is never passed to the policy`}
}

test_errors_routes_valid if {
	route_errors([
		{"method": "GET", "path": "/", "action": "chat"},
		{"method": "POST", "path": "/a/{agent}/t/{tool}", "agent": "{agent}", "action": "use_tools", "tool": "{tool}"},
	]) == set()
}
