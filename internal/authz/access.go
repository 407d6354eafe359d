package authz

import (
	"context"
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// Whoami describes the caller: principal, acting user, agent and effective
// capabilities as the policy computes them.
type Whoami struct {
	Principal    *principal.Principal
	Capabilities []string
}

// Whoami answers who the caller is and what it may do.
func (s *Service) Whoami(ctx context.Context, p *principal.Principal) (Whoami, error) {
	d, err := s.require(ctx, &facts{ability: "whoami", principal: p})
	if err != nil {
		return Whoami{}, err
	}
	caps := d.Capabilities
	if caps == nil {
		caps = []string{}
	}
	return Whoami{Principal: p, Capabilities: caps}, nil
}

// AuthorizeRequest is the runtime question a resource server asks with the
// token it received: may the caller perform action (with tool) on agent?
type AuthorizeRequest struct {
	Action string
	Tool   *string
	// Agent defaults to the token's own agent for a token principal.
	Agent string
}

// AuthorizeResult is the answer; a deny is an answer, not an error.
type AuthorizeResult struct {
	Allow      bool
	DeniedBy   []string
	Reasons    []string
	DecisionID string
	AgentID    int64
	Memoized   bool
}

// Authorize evaluates the three ceilings (and the caller's role on the
// agent) for one action. A token acts on its own agent unless req.Agent
// names another; every other caller must name the agent. Repeated questions
// are answered from the decision memo (see memo.go).
func (s *Service) Authorize(ctx context.Context, p *principal.Principal, req AuthorizeRequest) (AuthorizeResult, error) {
	f, err := s.authorizeFacts(ctx, p, req)
	if err != nil {
		return AuthorizeResult{}, err
	}
	d, memoized, err := s.evaluate(ctx, f)
	if err != nil {
		return AuthorizeResult{}, err
	}
	return authorizeResult(d, f.agent.ID, memoized), nil
}

// authorizeFacts gathers the facts of a runtime check; Authorize and
// ExplainAuthorize share it so an explanation is of the very decision made.
func (s *Service) authorizeFacts(ctx context.Context, p *principal.Principal, req AuthorizeRequest) (*facts, error) {
	if err := validAction(req.Action); err != nil {
		return nil, err
	}
	f := &facts{ability: "authorize", principal: p, action: req.Action}
	if req.Tool != nil {
		if err := validTool(*req.Tool); err != nil {
			return nil, err
		}
		f.tool, f.hasTool = *req.Tool, true
	}
	own := p.Kind == principal.KindToken && p.Agent != nil &&
		(req.Agent == "" || req.Agent == p.Agent.Slug || req.Agent == itoa(p.Agent.ID))
	switch {
	case own:
		// The token's own agent and owner are already resolved: no store
		// round trip. Grants are not gathered: the policy gives a token its
		// owner's role on its own agent, which comes from ownership (see
		// policies/README.md, "One input convention to know").
		f.agent, f.owner, f.grants = p.Agent, p.User, []model.Grant{}
	case req.Agent == "":
		return nil, invalid("invalid_agent", "agent", "agent is required unless the caller is an agent token")
	default:
		if _, err := s.agentScopedInto(ctx, f, req.Agent); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func authorizeResult(d policy.Decision, agentID int64, memo bool) AuthorizeResult {
	deniedBy := d.DeniedBy
	if deniedBy == nil {
		deniedBy = []string{}
	}
	return AuthorizeResult{Allow: d.Allow, DeniedBy: deniedBy, Reasons: d.Reasons, DecisionID: d.ID, AgentID: agentID, Memoized: memo}
}

// agentScopedInto loads an agent's facts into an existing facts value.
func (s *Service) agentScopedInto(ctx context.Context, f *facts, ref string) (*facts, error) {
	g, err := s.agentScoped(ctx, f.principal, f.ability, ref)
	if err != nil {
		return nil, err
	}
	f.agent, f.owner, f.grants = g.agent, g.owner, g.grants
	return f, nil
}

// Access is the answer to can-access-agent.
type Access struct {
	Allowed bool
	Role    string
	Agent   model.Agent
}

// CanAccess answers whether the caller holds at least minimumRole on agent.
func (s *Service) CanAccess(ctx context.Context, p *principal.Principal, ref, minimumRole string) (Access, error) {
	minimumRole, err := s.validMinimumRole(minimumRole)
	if err != nil {
		return Access{}, err
	}
	f, err := s.agentScoped(ctx, p, "can-access-agent", ref)
	if err != nil {
		return Access{}, err
	}
	f.minimumRole = minimumRole
	d, err := s.decide(ctx, f)
	if err != nil {
		return Access{}, err
	}
	return Access{Allowed: d.Allow, Role: d.Role, Agent: *f.agent}, nil
}

// AccessibleAgent is one row of list-accessible-agents.
type AccessibleAgent struct {
	Agent model.Agent
	Role  string
}

// Page selects a window of a listing ordered by agent id.
type Page struct {
	AfterID int64
	Limit   int
}

// ListAccessible returns the agents on which the caller holds at least
// minimumRole, ordered by id, one page at a time, with the id to continue
// after (0 when done). The policy computes the set with the same rule as
// CanAccess, over candidates Go gathers: every agent when the policy says the
// caller's scope is "all", otherwise the agents the caller owns or holds a
// grant on that can reach minimumRole (see grantsThatReach). Candidates are
// read a chunk at a time, so a page costs what it shows, not the size of the
// fleet.
func (s *Service) ListAccessible(ctx context.Context, p *principal.Principal, minimumRole string, page Page) ([]AccessibleAgent, int64, error) {
	minimumRole, err := s.validMinimumRole(minimumRole)
	if err != nil {
		return nil, 0, err
	}
	return s.pageAgents(ctx, p, minimumRole, page,
		func() ([]model.GrantMatch, error) { return s.grantsThatReach(ctx, p, minimumRole) },
		func(cands []model.Agent) ([]AccessibleAgent, error) {
			return s.accessibleAmong(ctx, p, minimumRole, cands)
		})
}

// pageAgents reads one page of the agents keep retains (ordered by id)
// among the candidates: every agent when the policy says p's scope is
// "all", otherwise the agents p owns or that hold a grant reach matches.
func (s *Service) pageAgents(ctx context.Context, p *principal.Principal, minimumRole string, page Page,
	reach func() ([]model.GrantMatch, error), keep func([]model.Agent) ([]AccessibleAgent, error),
) ([]AccessibleAgent, int64, error) {
	if page.Limit <= 0 || page.Limit > maxPage {
		page.Limit = defaultPage
	}
	scope, err := s.require(ctx, &facts{ability: "list-accessible-agents", principal: p, minimumRole: minimumRole, candidates: []model.Agent{}})
	if err != nil {
		return nil, 0, err
	}
	q := model.AgentQuery{All: scope.Scope == "all", AfterID: page.AfterID, Limit: max(page.Limit+1, minChunk)}
	if !q.All {
		if q.OrGrants, err = reach(); err != nil {
			return nil, 0, err
		}
		if p.User != nil {
			q.OwnerID = p.User.ID
		}
	}
	out := []AccessibleAgent{}
	for len(out) <= page.Limit { // one more than the page tells whether another page exists
		cands, err := s.st.ListAgents(ctx, q)
		if err != nil {
			return nil, 0, storeErr(err)
		}
		if len(cands) == 0 {
			break
		}
		found, err := keep(cands)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, found...)
		if len(cands) < q.Limit {
			break
		}
		q.AfterID = cands[len(cands)-1].ID
	}
	var next int64
	if len(out) > page.Limit {
		out = out[:page.Limit]
		next = out[len(out)-1].Agent.ID
	}
	return out, next, nil
}

// accessibleAmong asks the policy which of cands (ordered by id) the caller
// may access, in one evaluation.
func (s *Service) accessibleAmong(ctx context.Context, p *principal.Principal, minimumRole string, cands []model.Agent) ([]AccessibleAgent, error) {
	owners, gs, err := s.candidateFacts(ctx, p, cands)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]model.Agent, len(cands))
	for _, a := range cands {
		byID[a.ID] = a
	}
	d, err := s.require(ctx, &facts{ability: "list-accessible-agents", principal: p, minimumRole: minimumRole, candidates: cands, owners: owners, grants: gs})
	if err != nil {
		return nil, err
	}
	out := make([]AccessibleAgent, 0, len(d.Accessible))
	for _, acc := range d.Accessible {
		if a, ok := byID[acc.AgentID]; ok {
			out = append(out, AccessibleAgent{Agent: a, Role: acc.Role})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Agent.ID < out[j].Agent.ID })
	return out, nil
}

// grantsThatReach asks the policy which grants can give p at least
// minimumRole on an agent, so that the store reads only the agents holding
// one: the listing rule itself, evaluated once over the probes (see
// probeGrants). A probe the rule accepts becomes a match of the store query.
// Probe decisions are real evaluations, logged as such (Service.probe).
func (s *Service) grantsThatReach(ctx context.Context, p *principal.Principal, minimumRole string) ([]model.GrantMatch, error) {
	act, err := s.activation()
	if err != nil {
		return nil, err
	}
	grants := probeGrants(p, act)
	probes := make([]model.Agent, len(grants))
	for i, g := range grants {
		probes[i] = model.Agent{ID: g.AgentID, Status: model.StatusActive}
	}
	f := &facts{ability: "list-accessible-agents", principal: p, minimumRole: minimumRole, candidates: probes, owners: map[int64]*model.User{}, grants: grants}
	d, err := s.probe(ctx, f)
	if err == nil && !d.Allow {
		err = &DeniedError{Ability: f.ability, Decision: d}
	}
	if err != nil {
		return nil, err
	}
	ok := make([]bool, len(grants))
	for _, acc := range d.Accessible {
		if i := -acc.AgentID - 1; i >= 0 && i < int64(len(ok)) {
			ok[i] = true
		}
	}
	return grantMatches(grants, ok), nil
}

// grantsThatAllow asks the policy which grants can let p perform action on
// an agent: Authorize's rule on each probe (see probeGrants), an active
// agent whose active owner holds every user role of the bundle, so that
// no owner ceiling stands in the way that a real owner might not.
func (s *Service) grantsThatAllow(ctx context.Context, p *principal.Principal, action string) ([]model.GrantMatch, error) {
	act, err := s.activation()
	if err != nil {
		return nil, err
	}
	owner := &model.User{ID: -1, Roles: act.UserRoles, Status: model.StatusActive}
	grants := probeGrants(p, act)
	ok := make([]bool, len(grants))
	for i, g := range grants {
		agent := &model.Agent{ID: g.AgentID, OwnerID: owner.ID, Status: model.StatusActive}
		d, err := s.probe(ctx, &facts{ability: "authorize", principal: p, action: action, agent: agent, owner: owner, grants: grants[i : i+1]})
		if err != nil {
			return nil, err
		}
		ok[i] = d.Allow
	}
	return grantMatches(grants, ok), nil
}

// probeGrants are the grants a store query may have to match for p: one per
// (identity of p, agent role), each on its own probe agent (ids -1, -2, …,
// which no stored agent has) that p does not own.
//
// A probe stands for every agent on which only a grant speaks for p, so the
// candidates are complete as long as a grant's worth depends on its
// principal and role alone, as in the default policy. Ownership and a
// token's own agent (the only rules that read an agent's ids) come in
// through AgentQuery.OwnerID. Were a policy to make a grant's worth depend
// on more, a listing would miss agents, never show one too many: every
// candidate is still decided by the policy. TestListAccessibleEqualsCanAccess
// checks listings against the per-agent checks on random worlds.
func probeGrants(p *principal.Principal, act policy.Activation) []model.Grant {
	roles := sortedKeys(act.AgentRoles)
	ids := identities(p)
	out := make([]model.Grant, 0, len(ids)*len(roles))
	for _, id := range ids {
		for _, role := range roles {
			out = append(out, model.Grant{AgentID: -int64(len(out) + 1), Principal: id, Role: role})
		}
	}
	return out
}

// grantMatches groups the probe grants marked ok by principal.
func grantMatches(grants []model.Grant, ok []bool) []model.GrantMatch {
	at := map[string]int{} // principal → index in out
	var out []model.GrantMatch
	for i, g := range grants {
		if !ok[i] {
			continue
		}
		k, seen := at[g.Principal]
		if !seen {
			k, at[g.Principal] = len(out), len(out)
			out = append(out, model.GrantMatch{Principal: g.Principal})
		}
		out[k].Roles = append(out[k].Roles, g.Role)
	}
	return out
}

// candidateFacts reads, in two queries, the owners of cands and the grants
// on them that speak for p.
func (s *Service) candidateFacts(ctx context.Context, p *principal.Principal, cands []model.Agent) (map[int64]*model.User, []model.Grant, error) {
	ids := make([]int64, len(cands))
	ownerIDs := make([]int64, len(cands))
	for i, a := range cands {
		ids[i], ownerIDs[i] = a.ID, a.OwnerID
	}
	users, err := s.st.GetUsers(ctx, ownerIDs)
	if err != nil {
		return nil, nil, storeErr(err)
	}
	owners := make(map[int64]*model.User, len(users))
	for i := range users {
		owners[users[i].ID] = &users[i]
	}
	gs, err := s.grantsOn(ctx, p, ids...)
	if err != nil {
		return nil, nil, err
	}
	return owners, gs, nil
}

const (
	defaultPage = 100
	maxPage     = 1000
	// minChunk is the fewest candidates read per round trip when a page
	// is small and most candidates may be filtered out.
	minChunk = 64
)

// explainer is the optional engine capability behind ExplainAuthorize.
type explainer interface {
	Explain(ctx context.Context, input ast.Value) (policy.Decision, []string, error)
}

// ExplainAuthorize answers like Authorize, never from the memo, and returns
// the policy's evaluation trace for a human to read. The trace holds the
// facts of the decision: it is for operators, not for logs.
func (s *Service) ExplainAuthorize(ctx context.Context, p *principal.Principal, req AuthorizeRequest) (AuthorizeResult, []string, error) {
	ex, ok := s.engine.(explainer)
	if !ok {
		return AuthorizeResult{}, nil, fmt.Errorf("%w: the policy engine cannot explain", ErrUnavailable)
	}
	f, err := s.authorizeFacts(ctx, p, req)
	if err != nil {
		return AuthorizeResult{}, nil, err
	}
	d, trace, err := ex.Explain(ctx, f.input())
	if err != nil {
		return AuthorizeResult{}, trace, fmt.Errorf("%w: policy engine: %v", ErrUnavailable, err)
	}
	return authorizeResult(d, f.agent.ID, false), trace, nil
}
