package agentauthz.routes_test

import data.agentauthz.fixtures_test as f
import data.agentauthz.main
import data.agentauthz.routes

table := [
	{"method": "POST", "path": "/agents/{agent}/chat", "agent": "{agent}", "action": "chat"},
	{"method": "POST", "path": "/agents/{agent}/tools/{tool}", "agent": "{agent}", "action": "use_tools", "tool": "{tool}"},
	{"method": "POST", "path": "/agents/{agent}/tools", "agent": "{agent}", "action": "use_tools", "tool_header": "X-Tool"},
	{"method": "POST", "path": "/agents/alpha/chat", "agent": "shadowed", "action": "chat"},
	{"method": "GET", "path": "/bots/{bot}/do/{verb}", "agent": "{bot}", "action": "{verb}"},
	{"method": "POST", "path": "/search", "agent": "search-bot", "action": "use_tools", "tool": "web_search"},
	{"method": "GET", "path": "/", "action": "read_jobs"},
	{"method": "POST", "path": "/chat", "action": "chat"},
]

req(method, segments) := {"method": method, "segments": segments, "headers": {}}

route_of(request) := r if {
	r := routes.route with input.request as request with data.agentauthz.config.routes as table
}

no_route(request) if {
	not routes.route with input.request as request with data.agentauthz.config.routes as table
}

test_route_binds_agent_from_path if {
	route_of(req("POST", ["agents", "alpha", "chat"])) == {"agent": "alpha", "action": "chat"}
}

test_route_binds_tool_from_path if {
	route_of(req("POST", ["agents", "alpha", "tools", "web_search"])) == {"agent": "alpha", "action": "use_tools", "tool": "web_search"}
}

test_route_tool_from_header if {
	request := object.union(req("POST", ["agents", "alpha", "tools"]), {"headers": {"x-tool": "calculator"}})
	route_of(request) == {"agent": "alpha", "action": "use_tools", "tool": "calculator"}
}

test_route_tool_header_missing_matches_nothing if {
	no_route(req("POST", ["agents", "alpha", "tools"]))
}

test_route_first_match_wins if {
	route_of(req("POST", ["agents", "alpha", "chat"])).agent == "alpha"
}

test_route_action_from_path if {
	route_of(req("GET", ["bots", "b1", "do", "read_memory"])) == {"agent": "b1", "action": "read_memory"}
}

test_route_literal_agent_and_tool if {
	route_of(req("POST", ["search"])) == {"agent": "search-bot", "action": "use_tools", "tool": "web_search"}
}

test_route_root_and_no_agent if {
	route_of(req("GET", [])) == {"action": "read_jobs"}
	route_of(req("POST", ["chat"])) == {"action": "chat"}
}

test_route_method_must_match if {
	no_route(req("GET", ["agents", "alpha", "chat"]))
	no_route(req("PROPFIND", ["agents", "alpha", "chat"]))
}

test_route_segment_count_must_match if {
	no_route(req("POST", ["agents", "alpha", "chat", "more"]))
	no_route(req("POST", ["agents", "alpha"]))
	no_route(req("POST", []))
}

test_route_literal_must_match if {
	no_route(req("POST", ["agent", "alpha", "chat"]))
}

test_route_parameter_needs_a_segment if {
	no_route(req("POST", ["agents", "", "chat"]))
}

test_route_without_table_matches_nothing if {
	not routes.route with input.request as req("POST", ["chat"]) with data.agentauthz.config.routes as null
}

test_pattern_splits if {
	routes.pattern("/") == []
	routes.pattern("/a/{b}") == ["a", "{b}"]
	routes.param("{b}") == "b"
	not routes.param("b")
	not routes.param("{}")
}

decide(request) := d if {
	d := main.decision with input as {"ability": "forward-auth", "principal": f.user(f.editor), "request": request}
}

test_decision_forward_auth_route if {
	d := decide(req("POST", ["agents", "alpha", "chat"]))
	d.allow == true
	d.route == {"agent": "alpha", "action": "chat"}
}

test_decision_forward_auth_no_route if {
	d := decide(req("DELETE", ["agents", "alpha"]))
	d.allow == false
	d.denied_by == ["no_route"]
	not d.route
}

test_decision_forward_auth_needs_request if {
	d := main.decision with input as {"ability": "forward-auth", "principal": f.user(f.editor)}
	d.denied_by == ["input"]
	d2 := decide({"method": "POST", "segments": [1], "headers": {}})
	d2.denied_by == ["input"]
	d3 := decide({"method": "POST", "segments": [], "headers": {"x-tool": 1}})
	d3.denied_by == ["input"]
}
