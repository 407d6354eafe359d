package view

// Decision is the answer to an authorize question (POST /v1/authorize and
// `authorize --format=json`). An allow carries empty lists, never null.
// The server writes it with a hand-written encoder (httpapi.appendAuthorize)
// that a test keeps byte-for-byte equal to encoding/json of this type.
type Decision struct {
	Allow      bool     `json:"allow"`
	DeniedBy   []string `json:"denied_by"`
	Reasons    []string `json:"reasons"`
	DecisionID string   `json:"decision_id"`
	AgentID    int64    `json:"agent_id"`
}

// DecisionOf renders a decision; nil lists become empty ones.
func DecisionOf(allow bool, deniedBy, reasons []string, decisionID string, agentID int64) Decision {
	return Decision{Allow: allow, DeniedBy: nonNil(deniedBy), Reasons: nonNil(reasons), DecisionID: decisionID, AgentID: agentID}
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
