package authz

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/agentauthz/agentauthz/internal/credential"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// Subject types of the AuthZEN mapping (see README.md, "AuthZEN"): the
// subject a policy enforcement point names, rather than the credential the
// caller presents.
const (
	// SubjectUser is a user by login or numeric id.
	SubjectUser = "user"
	// SubjectAudience is an audience by name or "audience:<name>";
	// "public" is the anonymous caller.
	SubjectAudience = "audience"
	// SubjectAgentToken is an agent token by its token id (never the
	// token itself).
	SubjectAgentToken = "agent_token"
)

// DeniedBySubject is the denied_by of a decision whose subject names no
// live principal: unknown, disabled, revoked, expired, or an inactive
// agent. It never says which, so a denial does not tell whether the subject
// exists.
const DeniedBySubject = "subject"

// DeniedByResource is the denied_by of a decision on an agent that does not
// exist.
const DeniedByResource = "resource"

// Subject names a principal by type and id (an AuthZEN subject).
type Subject struct {
	Type string
	ID   string
}

// SubjectPrincipal resolves a subject into the principal a decision is made
// for. ok=false means the subject names no live principal; the caller must
// answer "deny" without telling why. A malformed subject (unknown type, an
// id that cannot name anything of that type) is a *ValidationError.
func (s *Service) SubjectPrincipal(ctx context.Context, sub Subject) (*principal.Principal, bool, error) {
	switch sub.Type {
	case SubjectUser:
		ref, err := principal.ParseRef(principal.TypeUser + ":" + sub.ID)
		if err != nil {
			return nil, false, invalid("invalid_subject", "subject.id", "a user subject's id must be a login or a user id")
		}
		var u model.User
		if id, ok := ref.UserID(); ok {
			u, err = s.st.GetUser(ctx, id)
		} else {
			u, err = s.st.GetUserByLogin(ctx, ref.Name)
		}
		switch {
		case errors.Is(err, model.ErrNotFound):
			return nil, false, nil
		case err != nil:
			return nil, false, storeErr(err)
		case u.Status != model.StatusActive:
			return nil, false, nil
		}
		return principal.ForUser(&u, nil), true, nil
	case SubjectAudience:
		ref, err := principal.ParseRef(sub.ID)
		if err != nil || ref.Type != principal.TypeAudience {
			return nil, false, invalid("invalid_subject", "subject.id", `an audience subject's id must be an audience name or "audience:<name>"`)
		}
		if ref.String() == principal.PublicAudience {
			return principal.Anonymous(), true, nil
		}
		return principal.ForAudiences([]string{ref.String()}), true, nil
	case SubjectAgentToken:
		id, err := strconv.ParseInt(sub.ID, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != sub.ID {
			return nil, false, invalid("invalid_subject", "subject.id", "an agent_token subject's id must be a token id (a positive integer), never the token")
		}
		res, err := s.st.ResolveTokenID(ctx, id)
		switch {
		case errors.Is(err, model.ErrNotFound):
			return nil, false, nil
		case err != nil:
			return nil, false, storeErr(err)
		}
		if credential.Live(&res, s.cfg.Now()) != nil {
			return nil, false, nil
		}
		return principal.ForToken(&res.Token, &res.Agent, res.Owner), true, nil
	}
	return nil, false, invalid("invalid_subject", "subject.type", `subject.type must be "user", "audience" or "agent_token"`)
}

// AuthorizeSubject is Authorize for a principal named by a subject (the
// AuthZEN evaluation): the subject is resolved and the decision is exactly
// Authorize's. A subject that names no live principal and an agent that
// does not exist are denials, not errors (denied_by "subject" and
// "resource"), each with its own decision id.
func (s *Service) AuthorizeSubject(ctx context.Context, sub Subject, req AuthorizeRequest) (AuthorizeResult, error) {
	if err := validAction(req.Action); err != nil {
		return AuthorizeResult{}, err
	}
	if req.Tool != nil {
		if err := validTool(*req.Tool); err != nil {
			return AuthorizeResult{}, err
		}
	}
	if req.Agent == "" {
		return AuthorizeResult{}, invalid("invalid_agent", "resource.id", "resource.id is required (an agent slug or id)")
	}
	start := time.Now()
	p, ok, err := s.SubjectPrincipal(ctx, sub)
	if err != nil {
		return AuthorizeResult{}, err
	}
	if !ok {
		return s.denyBefore(ctx, start, sub, nil, req, DeniedBySubject, "the subject is not a known, active principal"), nil
	}
	res, err := s.Authorize(ctx, p, req)
	var nf *NotFoundError
	if errors.As(err, &nf) && nf.Code == "agent_not_found" {
		return s.denyBefore(ctx, start, sub, p, req, DeniedByResource, "the agent does not exist"), nil
	}
	return res, err
}

// denyBefore is a denial decided before the policy could be asked, counted
// and logged as every decision is: the entry says that no policy evaluated
// it (Unevaluated, no input) and names the subject as asked when it
// resolved to no principal p (as the PEP named it: kind "user", "audience"
// or "agent_token"). Its revision is the bundle active then.
func (s *Service) denyBefore(ctx context.Context, start time.Time, sub Subject, p *principal.Principal, req AuthorizeRequest, layer, reason string) AuthorizeResult {
	d := policy.Decision{ID: policy.NewDecisionID(), DeniedBy: []string{layer}, Reasons: []string{reason}}
	s.cfg.Metrics.Decision("authorize", false, false)
	if s.cfg.DecisionLog != nil {
		f := &facts{ability: "authorize", principal: p, action: req.Action}
		if req.Tool != nil {
			f.tool = *req.Tool
		}
		r := decisionRecord(f, start, d, false, nil, s.engine.Activation().Revision)
		r.Unevaluated = true
		if p == nil {
			r.PrincipalKind, r.PrincipalID = sub.Type, sub.ID
		}
		s.cfg.DecisionLog.LogDecision(ctx, r)
	}
	return AuthorizeResult{Allow: false, DeniedBy: d.DeniedBy, Reasons: d.Reasons, DecisionID: d.ID}
}
