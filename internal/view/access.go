package view

// Access is the answer to "does this caller hold at least a role on this
// agent" (GET /v1/agents/{agent}/access, `agents access check`). A "no" is
// an answer too. Role is the role the caller holds, null when none;
// MinimumRole is the role asked about, null when the question named none.
type Access struct {
	Allowed     bool    `json:"allowed"`
	Role        *string `json:"role"`
	AgentID     int64   `json:"agent_id"`
	MinimumRole *string `json:"minimum_role"`
}

// AccessOf renders an access answer; an empty role or minimum role is null.
func AccessOf(allowed bool, role string, agentID int64, minimumRole string) Access {
	return Access{Allowed: allowed, Role: optString(role), AgentID: agentID, MinimumRole: optString(minimumRole)}
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
