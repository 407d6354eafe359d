# METADATA
# description: |
#   The forward-auth route table (ability "forward-auth", /v1/forward-auth):
#   which (agent, action, tool) a gateway's original request means. Go passes
#   input.request = {method, segments, headers}: the original method, the
#   original path split at "/" and percent-decoded once (Go refuses encoded
#   slashes, dot segments and empty segments before asking), and the headers
#   the table names (tool_header), keyed by lower-case name. The first route
#   of data.agentauthz.config.routes (in table order) that matches decides the
#   route; Go then asks the authorize layers about it (package actions).
package agentauthz.routes

import data.agentauthz.config

# _table is the route table; a bundle without one routes nothing.
default _table := []

_table := config.routes if is_array(config.routes)

# pattern(path) splits a route path into its segments ("/" has none).
pattern("/") := []

pattern(path) := split(trim_prefix(path, "/"), "/") if path != "/"

# param(segment) is the name of a "{name}" segment; undefined for a literal.
param(segment) := substring(segment, 1, count(segment) - 2) if {
	startswith(segment, "{")
	endswith(segment, "}")
	count(segment) > 2
}

# _segment_matches(p, s): pattern segment p accepts request segment s. A
# parameter binds only a non-empty segment.
_segment_matches(p, s) if {
	param(p)
	s != ""
}

_segment_matches(p, s) if {
	not param(p)
	p == s
}

# bindings(route, segments) binds the route's parameters to the segments.
bindings(route, segments) := {name: segments[i] |
	some i, p in pattern(route.path)
	name := param(p)
}

# resolve(spec, bound): "{name}" is the bound segment, anything else literal.
resolve(spec, bound) := bound[param(spec)]

resolve(spec, _) := spec if not param(spec)

# _header(route) is the value of the route's tool_header, or undefined when
# the request lacks it (the route then does not match: a route that takes
# its tool from a header never decides without one).
_header(route) := input.request.headers[lower(route.tool_header)]

# matching contains the index of every route the request matches.
matching contains i if {
	some i, route in _table
	route.method == input.request.method
	segments := input.request.segments
	p := pattern(route.path)
	count(p) == count(segments)
	every j, s in p {
		_segment_matches(s, segments[j])
	}
	_tool_available(route)
}

_tool_available(route) if not "tool_header" in object.keys(route)

_tool_available(route) if is_string(_header(route))

# route is what the first matching route resolves to: {action} plus agent
# and tool when the route names them.
route := object.union(
	{"action": resolve(r.action, bound)},
	object.union(_agent(r, bound), _tool(r, bound)),
) if {
	count(matching) > 0
	r := _table[min(matching)]
	bound := bindings(r, input.request.segments)
}

_agent(r, bound) := {"agent": resolve(r.agent, bound)} if is_string(r.agent)

_agent(r, _) := {} if not "agent" in object.keys(r)

_tool(r, bound) := {"tool": resolve(r.tool, bound)} if is_string(r.tool)

_tool(r, _) := {"tool": _header(r)} if is_string(r.tool_header)

_tool(r, _) := {} if {
	not "tool" in object.keys(r)
	not "tool_header" in object.keys(r)
}

# decision is the forward-auth answer: allowed (to go on to authorize) with
# the route, or no_route.
default decision := {
	"allow": false,
	"role": null,
	"denied_by": ["no_route"],
	"reasons": ["no route of config.routes matches the request"],
}

decision := {"allow": true, "role": null, "denied_by": [], "reasons": [], "route": route} if route
