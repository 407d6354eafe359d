# METADATA
# description: |
#   A benchmark fixture, not agentauthz's policy: the three ceilings of
#   POST /v1/authorize written by hand in their smallest form, as a user of
#   OPA's own server would write them. The load harness (tests/load) runs
#   `opa run --server` on this file and a data.json it derives from
#   bundles/default (data.minimal.roles: role -> capability -> true, with the
#   implies-all capability expanded; data.minimal.actions: action ->
#   capability), and sends each request's facts as input:
#
#     {"owner_roles": ["editor"], "token_caps": null | ["read", ...],
#      "tool_policy": null | {"mode": "allow"|"deny", "tools": [...]},
#      "action": "use_tools", "tool": "web_search"}   (tool optional)
#
#   It is queried at /v1/data/minimal/allow. The harness checks that it
#   answers every measured question as agentauthz does.
package minimal

default allow := false

allow if {
	cap := data.minimal.actions[input.action]
	owner_has(cap)
	token_allows(cap)
	tool_permitted
}

# owner ceiling: one of the owner's roles holds the capability
owner_has(cap) if {
	some role in input.owner_roles
	data.minimal.roles[role][cap]
}

# token ceiling: null is the owner's ceiling, a list holds exactly its names
token_allows(_) if input.token_caps == null

token_allows(cap) if cap in input.token_caps

# tool allow/deny list: no tool or no policy restricts nothing
tool_permitted if not input.tool

tool_permitted if input.tool_policy == null

tool_permitted if {
	input.tool_policy.mode == "allow"
	input.tool in input.tool_policy.tools
}

tool_permitted if {
	input.tool_policy.mode == "deny"
	not input.tool in input.tool_policy.tools
}
