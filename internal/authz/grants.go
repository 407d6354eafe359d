package authz

import (
	"context"
	"errors"
	"strconv"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// GrantView is one row of an agent's access list. Implicit marks the owner's
// access, which comes from ownership, not from a grant row.
type GrantView struct {
	model.Grant
	Implicit bool
}

// ListGrants lists who holds which role on an agent, the owner first.
func (s *Service) ListGrants(ctx context.Context, p *principal.Principal, ref string) ([]GrantView, error) {
	f, err := s.agentScoped(ctx, p, "list-agent-access", ref)
	if err != nil {
		return nil, err
	}
	if _, err := s.require(ctx, f); err != nil {
		return nil, err
	}
	gs, err := s.st.ListGrants(ctx, f.agent.ID)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]GrantView, 0, len(gs)+1)
	if f.owner != nil {
		// The owner's role is whatever the policy says an owner holds.
		op := principal.ForUser(f.owner, nil)
		d, err := s.decide(ctx, &facts{ability: "can-access-agent", principal: op, agent: f.agent, owner: f.owner, grants: []model.Grant{}})
		if err != nil {
			return nil, err
		}
		if d.Role != "" {
			out = append(out, GrantView{Grant: model.Grant{AgentID: f.agent.ID, Principal: op.ID, Role: d.Role, GrantedAt: f.agent.CreatedAt}, Implicit: true})
		}
	}
	for _, g := range gs {
		out = append(out, GrantView{Grant: g})
	}
	return out, nil
}

// PutGrant gives a principal a role on an agent (replacing its grant). The
// policy bounds the role by the caller's own (grant_ceiling).
func (s *Service) PutGrant(ctx context.Context, p *principal.Principal, ref, who, role string) (model.Grant, bool, error) {
	if err := s.validAgentRole("role", role); err != nil {
		return model.Grant{}, false, err
	}
	f, target, err := s.grantFacts(ctx, p, "grant-agent-access", ref, who, func(f *facts) {
		f.request("grant_request", item("role", str(role)))
	})
	if err != nil {
		return model.Grant{}, false, err
	}
	g, created, err := s.st.PutGrant(ctx, model.Grant{AgentID: f.agent.ID, Principal: target, Role: role, GrantedAt: s.cfg.Now().UTC()})
	if err != nil {
		return g, false, s.agentGone(err, f.agent)
	}
	s.cfg.Logger.Info("access granted", "agent_id", f.agent.ID, "principal", target, "role", role, "by", p.ID)
	return g, created, nil
}

// DeleteGrant removes a principal's grant on an agent.
func (s *Service) DeleteGrant(ctx context.Context, p *principal.Principal, ref, who string) error {
	f, target, err := s.grantFacts(ctx, p, "revoke-agent-access", ref, who, nil)
	if err != nil {
		return err
	}
	err = s.st.DeleteGrant(ctx, f.agent.ID, target)
	if errors.Is(err, model.ErrNotFound) {
		return notFound("grant_not_found", "%s holds no grant on agent %q", target, f.agent.Slug)
	}
	if err != nil {
		return storeErr(err)
	}
	s.cfg.Logger.Info("access revoked", "agent_id", f.agent.ID, "principal", target, "by", p.ID)
	return nil
}

// grantFacts authorizes a grant change, then resolves its target principal.
// Authorizing first means a caller without rights learns nothing: neither
// who owns the agent nor which logins exist. describe adds the request.
func (s *Service) grantFacts(ctx context.Context, p *principal.Principal, ability, ref, who string, describe func(*facts)) (*facts, string, error) {
	if _, err := principal.ParseRef(who); err != nil {
		return nil, "", invalid("invalid_principal", "principal", "%v", err)
	}
	f, err := s.agentScoped(ctx, p, ability, ref)
	if err != nil {
		return nil, "", err
	}
	if describe != nil {
		describe(f)
	}
	if _, err := s.require(ctx, f); err != nil {
		return nil, "", err
	}
	target, err := s.canonicalPrincipal(ctx, who)
	if err != nil {
		return nil, "", err
	}
	if target == userID(f.agent.OwnerID) {
		return nil, "", conflict("owner_access_implicit", "the owner's access to agent %q is implicit and cannot be granted or revoked", f.agent.Slug)
	}
	return f, target, nil
}

// canonicalPrincipal turns "user:<id|login>", "audience:<name>" or a bare
// audience name into the stored form ("user:<id>", "audience:<name>").
func (s *Service) canonicalPrincipal(ctx context.Context, who string) (string, error) {
	ref, err := principal.ParseRef(who)
	if err != nil {
		return "", invalid("invalid_principal", "principal", "%v", err)
	}
	if ref.Type != "user" {
		return ref.String(), nil
	}
	u, err := s.findUser(ctx, ref.Name)
	if err != nil {
		return "", err
	}
	return userID(u.ID), nil
}

func userID(id int64) string { return "user:" + strconv.FormatInt(id, 10) }
