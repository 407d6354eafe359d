package authz

import (
	"context"
	"errors"
	"strconv"

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
	p, ok, err := s.SubjectPrincipal(ctx, sub)
	if err != nil {
		return AuthorizeResult{}, err
	}
	if !ok {
		return s.denyBefore(DeniedBySubject, "the subject is not a known, active principal"), nil
	}
	res, err := s.Authorize(ctx, p, req)
	var nf *NotFoundError
	if errors.As(err, &nf) && nf.Code == "agent_not_found" {
		return s.denyBefore(DeniedByResource, "the agent does not exist"), nil
	}
	return res, err
}

// denyBefore is a denial decided before the policy could be asked.
func (s *Service) denyBefore(layer, reason string) AuthorizeResult {
	s.cfg.Metrics.Decision("authorize", false, false)
	return AuthorizeResult{Allow: false, DeniedBy: []string{layer}, Reasons: []string{reason}, DecisionID: policy.NewDecisionID()}
}
