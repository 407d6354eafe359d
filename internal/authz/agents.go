package authz

import (
	"context"
	"errors"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// CreateAgentRequest asks for a new agent.
type CreateAgentRequest struct {
	Slug string
	Name string
	// Owner is a login or id; empty means the caller's acting user.
	Owner      string
	ToolPolicy *model.ToolPolicy
}

// CreateAgent creates an agent owned by req.Owner (or the caller).
func (s *Service) CreateAgent(ctx context.Context, p *principal.Principal, req CreateAgentRequest) (model.Agent, error) {
	if err := validNewSlug(req.Slug); err != nil {
		return model.Agent{}, err
	}
	if err := validName("name", req.Name); err != nil {
		return model.Agent{}, err
	}
	if err := ValidToolPolicy(req.ToolPolicy); err != nil {
		return model.Agent{}, err
	}
	if req.Owner != "" && !denotes(p, req.Owner) {
		// For somebody else: ask first with an owner that is nobody, so a
		// caller who may not create agents for others is refused before
		// any login is looked up (it cannot tell which logins exist).
		if _, err := s.require(ctx, createAgentFacts(p, &model.User{}, req)); err != nil {
			return model.Agent{}, err
		}
	}
	var owner *model.User
	switch {
	case req.Owner != "":
		u, err := s.findUser(ctx, req.Owner)
		if err != nil {
			return model.Agent{}, err
		}
		owner = &u
	case p.User != nil:
		owner = p.User
	default:
		return model.Agent{}, invalid("invalid_owner", "owner", "owner is required")
	}
	if _, err := s.require(ctx, createAgentFacts(p, owner, req)); err != nil {
		return model.Agent{}, err
	}
	name := req.Name
	if name == "" {
		name = req.Slug
	}
	now := s.cfg.Now().UTC()
	a, err := s.st.CreateAgent(ctx, model.Agent{Slug: req.Slug, Name: name, OwnerID: owner.ID, Status: model.StatusActive, ToolPolicy: req.ToolPolicy, CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, model.ErrConflict) {
		return a, conflict("slug_taken", "an agent with slug %q already exists", req.Slug)
	}
	return a, storeErr(err)
}

// createAgentFacts describes creating req's agent for owner: the new
// agent's tool policy and, for a token, the tool policy it is bound by.
func createAgentFacts(p *principal.Principal, owner *model.User, req CreateAgentRequest) *facts {
	f := (&facts{ability: "create-agent", principal: p, resource: owner}).
		request("agent_request", item("tool_policy", toolPolicyTerm(req.ToolPolicy)))
	if p.Kind == principal.KindToken && p.Agent != nil {
		f.request("creator_agent", item("id", num(p.Agent.ID)), item("tool_policy", toolPolicyTerm(p.Agent.ToolPolicy)))
	}
	return f
}

// denotes reports whether ref (a login or an id) names the caller's user.
func denotes(p *principal.Principal, ref string) bool {
	return p.User != nil && (ref == p.User.Login || ref == strconv.FormatInt(p.User.ID, 10))
}

// GetAgent shows an agent with the caller's role on it.
func (s *Service) GetAgent(ctx context.Context, p *principal.Principal, ref string) (AccessibleAgent, error) {
	f, err := s.agentScoped(ctx, p, "show-agent", ref)
	if err != nil {
		return AccessibleAgent{}, err
	}
	d, err := s.require(ctx, f)
	if err != nil {
		return AccessibleAgent{}, err
	}
	return AccessibleAgent{Agent: *f.agent, Role: d.Role}, nil
}

// AgentUpdate is a partial update; nil fields are left alone.
type AgentUpdate struct {
	Name            *string
	Status          *string
	ToolPolicy      *model.ToolPolicy
	ClearToolPolicy bool
}

// UpdateAgent changes an agent's name, status or tool policy. Tokens of the
// agent are evicted from the cache so the change applies to the next request.
func (s *Service) UpdateAgent(ctx context.Context, p *principal.Principal, ref string, u AgentUpdate) (model.Agent, error) {
	if u.Name != nil {
		if err := validName("name", *u.Name); err != nil {
			return model.Agent{}, err
		}
		if *u.Name == "" {
			return model.Agent{}, invalid("invalid_name", "name", "name must not be empty")
		}
	}
	if u.Status != nil && *u.Status != model.StatusActive && *u.Status != model.StatusInactive {
		return model.Agent{}, invalid("invalid_status", "status", "status must be %q or %q, not %q", model.StatusActive, model.StatusInactive, clip(*u.Status))
	}
	if err := ValidToolPolicy(u.ToolPolicy); err != nil {
		return model.Agent{}, err
	}
	if u.Name == nil && u.Status == nil && u.ToolPolicy == nil && !u.ClearToolPolicy {
		return model.Agent{}, invalid("empty_update", "", "nothing to update: give name, status or tool_policy")
	}
	f, err := s.agentScoped(ctx, p, "update-agent", ref)
	if err != nil {
		return model.Agent{}, err
	}
	f.request("agent_update", u.fields()...)
	if _, err := s.require(ctx, f); err != nil {
		return model.Agent{}, err
	}
	a, err := s.st.UpdateAgent(ctx, f.agent.ID, model.AgentPatch{Name: u.Name, Status: u.Status, ToolPolicy: u.ToolPolicy, ClearToolPolicy: u.ClearToolPolicy})
	if err != nil {
		return a, s.agentGone(err, f.agent)
	}
	s.evict.EvictAgent(a.ID)
	return a, nil
}

// fields renders the update as the policy's agent_update document: only
// the keys the update sets (tool_policy null when it clears the policy).
func (u AgentUpdate) fields() [][2]*ast.Term {
	var out [][2]*ast.Term
	if u.Name != nil {
		out = append(out, item("name", str(*u.Name)))
	}
	if u.Status != nil {
		out = append(out, item("status", str(*u.Status)))
	}
	if u.ToolPolicy != nil || u.ClearToolPolicy {
		out = append(out, item("tool_policy", toolPolicyTerm(u.ToolPolicy)))
	}
	return out
}

// DeleteAgent deletes an agent, its grants and its tokens.
func (s *Service) DeleteAgent(ctx context.Context, p *principal.Principal, ref string) error {
	f, err := s.agentScoped(ctx, p, "delete-agent", ref)
	if err != nil {
		return err
	}
	if _, err := s.require(ctx, f); err != nil {
		return err
	}
	revoked, err := s.st.DeleteAgent(ctx, f.agent.ID)
	if err != nil {
		return s.agentGone(err, f.agent)
	}
	s.evict.EvictAgent(f.agent.ID)
	for _, id := range revoked {
		s.evict.EvictToken(id)
	}
	s.cfg.Logger.Info("agent deleted", "agent_id", f.agent.ID, "by", p.ID)
	return nil
}

// agentGone maps a not-found that raced with a concurrent delete.
func (s *Service) agentGone(err error, a *model.Agent) error {
	if errors.Is(err, model.ErrNotFound) {
		return notFound("agent_not_found", "agent %q not found", a.Slug)
	}
	return storeErr(err)
}
