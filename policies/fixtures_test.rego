# METADATA
# description: Shared people, agents and principals for the policy tests (no tests here).
package agentauthz.fixtures_test

administrator := {"id": 1, "roles": ["administrator"], "status": "active"}

editor := {"id": 3, "roles": ["editor"], "status": "active"}

author := {"id": 4, "roles": ["author"], "status": "active"}

subscriber := {"id": 5, "roles": ["subscriber"], "status": "active"}

contributor := {"id": 6, "roles": ["contributor"], "status": "active"}

# agent 7 and agent 8 belong to the editor; agent 9 to the administrator.
agent7 := {"id": 7, "owner_id": 3, "status": "active", "tool_policy": null, "owner": editor}

agent8 := {"id": 8, "owner_id": 3, "status": "active", "tool_policy": null, "owner": editor}

agent9 := {"id": 9, "owner_id": 1, "status": "active", "tool_policy": null, "owner": administrator}

user(u) := {"kind": "user", "id": sprintf("user:%d", [u.id]), "user": u, "audiences": []}

token(u, agent_id, caps) := {
	"kind": "token",
	"id": "token:12",
	"user": u,
	"audiences": [],
	"token": {"id": 12, "agent_id": agent_id, "capabilities": caps},
}

audience(name) := {"kind": "audience", "id": name, "audiences": []}

anonymous := {"kind": "anonymous", "id": "audience:public"}

operator := {"kind": "operator", "id": "operator"}

grant(agent_id, principal, role) := {"agent_id": agent_id, "principal": principal, "role": role}

settings := {
	"implies_all_capability": "manage_options",
	"site_admins_are_agent_admins": true,
	"token_reach": "agent",
	"operator_is_superuser": true,
}
