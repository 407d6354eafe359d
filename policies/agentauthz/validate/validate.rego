# METADATA
# description: |
#   Checks the bundle's configuration data before the engine activates it.
#   Every entry of errors is one sentence about data.agentauthz.config; a
#   non-empty set makes the engine reject the bundle and keep the old one.
package agentauthz.validate

import data.agentauthz.config

# METADATA
# title: errors
# description: the set of problems in data.agentauthz.config; empty when the bundle is usable.
# entrypoint: true
errors contains "data.agentauthz.config is missing or not an object" if not config_present

# The settings every decision reads, and the JSON type each must have.
setting_types := {
	"implies_all_capability": "string",
	"site_admins_are_agent_admins": "boolean",
	"token_reach": "string",
	"operator_is_superuser": "boolean",
}

errors contains "config.settings is missing or not an object" if not is_object_at(["settings"])

errors contains sprintf("config.settings.%s is missing", [key]) if {
	is_object(config.settings)
	some key, _ in setting_types
	not key in object.keys(config.settings)
}

errors contains sprintf("config.settings.%s must be a %s", [key, want]) if {
	some key, want in setting_types
	type_name(config.settings[key]) != want
}

errors contains sprintf("config.settings.token_reach must be \"agent\" or \"owner\", not %q", [reach]) if {
	reach := config.settings.token_reach
	is_string(reach)
	not reach in {"agent", "owner"}
}

errors contains "config.agent_roles must be a non-empty object of role ranks" if not has_agent_roles

has_agent_roles if {
	is_object(config.agent_roles)
	count(config.agent_roles) > 0
}

errors contains sprintf("config.agent_roles.%s must be a number", [name]) if {
	some name, r in config.agent_roles
	not is_number(r)
}

# The policy names these two: "viewer" is the default minimum_role and
# "admin" is what owners, site administrators and the operator hold.
errors contains sprintf("config.agent_roles must define %q", [name]) if {
	is_object(config.agent_roles)
	some name in {"viewer", "admin"}
	not name in object.keys(config.agent_roles)
}

errors contains "config.agent_roles ranks must be distinct" if {
	count({r | some r in config.agent_roles}) != count(config.agent_roles)
}

errors contains sprintf("config.agent_roles.%s outranks admin; admin must be the highest role", [name]) if {
	some name, r in config.agent_roles
	r > config.agent_roles.admin
}

errors contains "config.roles must be an object" if not is_object_at(["roles"])

errors contains sprintf("config.roles.%s must be an object of booleans", [name]) if {
	some name, role in config.roles
	not object_of_booleans(role)
}

# actions and abilities share one shape: {capability, min_role}.
tables := {"actions", "abilities"}

errors contains sprintf("config.%s must be an object", [table]) if {
	some table in tables
	not is_object_at([table])
}

errors contains sprintf("config.%s.%s must be an object", [table, name]) if {
	some table in tables
	some name, entry in config[table]
	not is_object(entry)
}

errors contains sprintf("config.%s.%s is missing %s", [table, name, key]) if {
	some table in tables
	some name, entry in config[table]
	is_object(entry)
	some key in {"capability", "min_role"}
	not key in object.keys(entry)
}

errors contains sprintf("config.%s.%s.capability must be a string or null", [table, name]) if {
	some table in tables
	some name, entry in config[table]
	cap := entry.capability
	not is_string(cap)
	cap != null
}

errors contains sprintf("config.%s.%s.min_role %v is not an agent role", [table, name, min_role]) if {
	some table in tables
	some name, entry in config[table]
	min_role := entry.min_role
	not valid_min_role(table, min_role)
}

# An action always runs on an agent, so it needs a role there; an ability
# with min_role null is not agent-scoped.
valid_min_role(_, min_role) if {
	is_string(min_role)
	min_role in object.keys(config.agent_roles)
}

valid_min_role("abilities", null)

# Negating a call on a missing document is undefined rather than true, so
# presence is tested by rules that a missing document leaves undefined.
config_present if is_object(config)

# is_object_at(path): the config holds an object at path.
is_object_at(path) if is_object(object.get(config, path, null))

object_of_booleans(x) if {
	is_object(x)
	every held in x {
		is_boolean(held)
	}
}

# token_capability (abilities only, optional): the capability a token
# principal must name in its own list to use the ability (management powers).
errors contains sprintf("config.abilities.%s.token_capability must be a string or null", [name]) if {
	some name, entry in config.abilities
	cap := entry.token_capability
	not is_string(cap)
	cap != null
}

# routes (optional): the forward-auth route table, a list of
# {method, path, action, agent?, tool?, tool_header?} (package routes).
route_keys := {"method", "path", "action", "agent", "tool", "tool_header"}

errors contains "config.routes must be a list of routes" if {
	routes := config.routes
	not is_array(routes)
}

errors contains sprintf("config.routes[%d] must be an object", [i]) if {
	some i, r in _routes
	not is_object(r)
}

errors contains sprintf("config.routes[%d] has unknown key %q", [i, key]) if {
	some i, r in _routes
	is_object(r)
	some key, _ in r
	not key in route_keys
}

errors contains sprintf("config.routes[%d] is missing %s", [i, key]) if {
	some i, r in _routes
	is_object(r)
	some key in {"method", "path", "action"}
	not key in object.keys(r)
}

errors contains sprintf("config.routes[%d].%s must be a string", [i, key]) if {
	some i, r in _routes
	some key in route_keys
	v := r[key]
	not is_string(v)
}

errors contains sprintf("config.routes[%d].method %q must be an upper-case HTTP method", [i, method]) if {
	some i, r in _routes
	method := r.method
	is_string(method)
	not regex.match(`^[A-Z]+$`, method)
}

# A path is "/" or "/"-separated segments, each a literal (no braces, not
# "." or "..") or a whole-segment parameter "{name}".
errors contains sprintf("config.routes[%d].path %q must be \"/\" or /segment/... with literal or {name} segments", [i, path]) if {
	some i, r in _routes
	path := r.path
	is_string(path)
	not _valid_path(path)
}

_valid_path("/")

_valid_path(path) if {
	path != "/"
	startswith(path, "/")
	every segment in split(substring(path, 1, -1), "/") {
		_valid_segment(segment)
	}
}

_valid_segment(segment) if regex.match(`^\{[a-z_][a-z0-9_]*\}$`, segment)

_valid_segment(segment) if {
	regex.match(`^[^{}/]+$`, segment)
	not segment in {".", ".."}
}

errors contains sprintf("config.routes[%d].path %q names parameter %s twice", [i, path, name]) if {
	some i, r in _routes
	path := r.path
	_valid_path(path)
	params := [p | some p in _params(path)]
	some name in {p | some p in params}
	count([p | some p in params; p == name]) > 1
}

_params(path) := [substring(s, 1, count(s) - 2) |
	some s in split(substring(path, 1, -1), "/")
	regex.match(`^\{[a-z_][a-z0-9_]*\}$`, s)
]

errors contains sprintf("config.routes[%d].%s %q names no parameter of the path", [i, key, spec]) if {
	some i, r in _routes
	some key in {"action", "agent", "tool"}
	spec := r[key]
	is_string(spec)
	regex.match(`^\{.*\}$`, spec)
	is_string(r.path)
	not substring(spec, 1, count(spec) - 2) in _params(r.path)
}

errors contains sprintf("config.routes[%d].action %q is not a known action", [i, action]) if {
	some i, r in _routes
	action := r.action
	is_string(action)
	not regex.match(`^\{.*\}$`, action)
	not action in object.keys(object.get(config, "actions", {}))
}

errors contains sprintf("config.routes[%d] names both tool and tool_header", [i]) if {
	some i, r in _routes
	"tool" in object.keys(r)
	"tool_header" in object.keys(r)
}

errors contains sprintf("config.routes[%d].tool_header %q must be a header name", [i, name]) if {
	some i, r in _routes
	name := r.tool_header
	is_string(name)
	not regex.match(`^[A-Za-z0-9-]+$`, name)
}

default _routes := []

_routes := config.routes if is_array(config.routes)

# Credentials never reach the policy: Go does not pass these headers.
errors contains sprintf("config.routes[%d].tool_header %q carries credentials and is never passed to the policy", [i, name]) if {
	some i, r in _routes
	name := r.tool_header
	is_string(name)
	lower(name) in {"authorization", "proxy-authorization", "cookie"}
}
