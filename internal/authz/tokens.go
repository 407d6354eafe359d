package authz

import (
	"context"
	"errors"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
	"github.com/agentauthz/agentauthz/internal/token"
)

// CreateTokenRequest asks for a new bearer token on an agent.
type CreateTokenRequest struct {
	Label string
	// Capabilities nil = the owner's ceiling; [] = nothing.
	Capabilities *[]string
	// ExpiresIn in seconds; nil = never expires.
	ExpiresIn *int64
}

// CreatedToken is the one moment the raw token exists outside the caller's
// hands. Raw must be shown once and dropped.
type CreatedToken struct {
	Token model.Token
	Raw   string
}

// CreateToken issues a token for an agent, within the minter's own ceiling.
func (s *Service) CreateToken(ctx context.Context, p *principal.Principal, agentRef string, req CreateTokenRequest) (CreatedToken, error) {
	if err := validLabel(req.Label); err != nil {
		return CreatedToken{}, err
	}
	if err := validCapabilities(req.Capabilities); err != nil {
		return CreatedToken{}, err
	}
	expiresIn, err := s.validExpiresIn(req.ExpiresIn)
	if err != nil {
		return CreatedToken{}, err
	}
	f, err := s.agentScoped(ctx, p, "create-agent-token", agentRef)
	if err != nil {
		return CreatedToken{}, err
	}
	now := s.cfg.Now().UTC()
	var expiresAt *time.Time
	if expiresIn != nil {
		at := now.Add(time.Duration(*expiresIn) * time.Second)
		expiresAt = &at
	}
	f.request("token_request",
		item("capabilities", optStrings(req.Capabilities)),
		item("expires_at", timeTerm(expiresAt)))
	if _, err := s.require(ctx, f); err != nil {
		return CreatedToken{}, err
	}
	if f.agent.Status != model.StatusActive {
		return CreatedToken{}, conflict("agent_not_active", "agent %q is inactive; activate it before issuing tokens", f.agent.Slug)
	}
	raw, err := token.Generate(s.cfg.TokenPrefix, f.agent.Slug)
	if err != nil {
		return CreatedToken{}, err
	}
	t := model.Token{
		AgentID:      f.agent.ID,
		Hash:         token.Hash(raw),
		Prefix:       token.Hint(raw),
		Label:        req.Label,
		Capabilities: req.Capabilities,
		ExpiresAt:    expiresAt,
		CreatedAt:    now,
	}
	if p.Kind == principal.KindToken && p.Token != nil {
		// the child dies with its minter (store.RevokeToken cascades)
		t.ParentID = &p.Token.ID
	}
	t, err = s.st.CreateToken(ctx, t)
	if errors.Is(err, model.ErrParentRevoked) {
		return CreatedToken{}, conflict("minter_revoked", "the token minting this one was revoked meanwhile")
	}
	if err != nil {
		return CreatedToken{}, storeErr(err)
	}
	s.cfg.Logger.Info("token created", "agent_id", t.AgentID, "token_id", t.ID, "hint", t.Prefix, "by", p.ID)
	return CreatedToken{Token: t, Raw: raw}, nil
}

// ListTokens lists an agent's tokens: metadata only, never hash or secret.
func (s *Service) ListTokens(ctx context.Context, p *principal.Principal, agentRef string) ([]model.Token, error) {
	f, err := s.agentScoped(ctx, p, "list-agent-tokens", agentRef)
	if err != nil {
		return nil, err
	}
	if _, err := s.require(ctx, f); err != nil {
		return nil, err
	}
	ts, err := s.st.ListTokens(ctx, f.agent.ID)
	if err != nil {
		return nil, storeErr(err)
	}
	if ts == nil {
		ts = []model.Token{}
	}
	return ts, nil
}

// RevokeToken revokes one token of an agent and every token minted from
// it, transitively, effective immediately on this process (other
// processes learn it from the database's change notifications: see the
// README's staleness bound).
func (s *Service) RevokeToken(ctx context.Context, p *principal.Principal, agentRef string, tokenID int64) (model.Token, error) {
	if tokenID <= 0 {
		return model.Token{}, invalid("invalid_token_id", "token_id", "token_id must be a positive integer")
	}
	f, err := s.agentScoped(ctx, p, "revoke-agent-token", agentRef)
	if err != nil {
		return model.Token{}, err
	}
	f.request("target_token", item("id", num(tokenID)))
	if _, err := s.require(ctx, f); err != nil {
		return model.Token{}, err
	}
	t, descendants, err := s.st.RevokeToken(ctx, f.agent.ID, tokenID, s.cfg.Now().UTC())
	if errors.Is(err, model.ErrNotFound) {
		return t, notFound("token_not_found", "token %d not found on agent %q", tokenID, f.agent.Slug)
	}
	if err != nil {
		return t, storeErr(err)
	}
	s.evict.EvictToken(tokenID)
	for _, id := range descendants {
		s.evict.EvictToken(id)
	}
	s.cfg.Logger.Info("token revoked", "agent_id", t.AgentID, "token_id", t.ID, "descendants", descendants, "by", p.ID)
	return t, nil
}
