package authz

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// The AuthZEN search APIs (Authorization API 1.0, section "Search APIs"):
// "any result from a Search API, when subsequently used in an Access
// Evaluation API call, SHOULD result in a "decision": true response". Every
// result here is one the policy allowed, through the very decisions of
// evaluation and can-access-agent; Go only gathers the candidates.

// ActionAccess is the AuthZEN action name of the can-access-agent rule:
// "holds at least SearchQuery.MinimumRole on the agent" rather than "may
// perform a runtime action". A bundle action of this name is never reached
// through search (see README.md, "AuthZEN").
const ActionAccess = "can_access"

// SearchQuery is what a search asks besides the entity searched for: the
// action (a runtime action of the bundle, or ActionAccess with a minimum
// role), and where to resume.
type SearchQuery struct {
	Action string
	// MinimumRole is the role ActionAccess asks for; "" is the policy's
	// default.
	MinimumRole string
	// After is the cursor of the last result already returned ("" at the
	// start): an agent id, a subject's sort key or an action name.
	After string
	Limit int
}

// SearchPage is one page of results and the cursor to resume after ("" when
// done).
type SearchPage[T any] struct {
	Results []T
	Next    string
}

// validSearch checks the action and the minimum role of q and bounds its
// limit.
func (s *Service) validSearch(q *SearchQuery) error {
	if q.Limit <= 0 || q.Limit > maxPage {
		q.Limit = defaultPage
	}
	if q.Action != ActionAccess {
		if q.MinimumRole != "" {
			return invalid("invalid_minimum_role", "action.properties.minimum_role", "minimum_role goes with the action %q only", ActionAccess)
		}
		return validAction(q.Action)
	}
	var err error
	q.MinimumRole, err = s.validMinimumRole(q.MinimumRole)
	return err
}

// SearchResources answers the AuthZEN resource search: the agents on which
// sub may perform q.Action (or, for ActionAccess, holds at least
// q.MinimumRole), ordered by id. A subject that names no live principal,
// or that the policy does not let list agents, finds nothing.
func (s *Service) SearchResources(ctx context.Context, sub Subject, q SearchQuery) (SearchPage[AccessibleAgent], error) {
	none := SearchPage[AccessibleAgent]{Results: []AccessibleAgent{}}
	if err := s.validSearch(&q); err != nil {
		return none, err
	}
	after, err := cursorID(q.After)
	if err != nil {
		return none, err
	}
	p, ok, err := s.SubjectPrincipal(ctx, sub)
	if err != nil || !ok {
		return none, err
	}
	if q.Action == ActionAccess {
		found, next, err := s.ListAccessible(ctx, p, q.MinimumRole, Page{AfterID: after, Limit: q.Limit})
		return resourcePage(found, next), deniedAsNone(err)
	}
	found, next, err := s.ListAllowed(ctx, p, q.Action, Page{AfterID: after, Limit: q.Limit})
	return resourcePage(found, next), deniedAsNone(err)
}

// ListAllowed returns the agents on which p may perform action, ordered by
// id, one page at a time, with the id to continue after (0 when done): the
// agents holding a grant that can allow it (see grantsThatAllow), those p
// owns, or every agent when the policy says p's scope is "all", each
// decided by Authorize's rule.
func (s *Service) ListAllowed(ctx context.Context, p *principal.Principal, action string, page Page) ([]AccessibleAgent, int64, error) {
	if err := validAction(action); err != nil {
		return nil, 0, err
	}
	return s.pageAgents(ctx, p, "", page,
		func() ([]model.GrantMatch, error) { return s.grantsThatAllow(ctx, p, action) },
		func(cands []model.Agent) ([]AccessibleAgent, error) { return s.allowedAmong(ctx, p, action, cands) })
}

// allowedAmong keeps the candidates on which p may perform action, each
// decided by Authorize's rule over the facts Authorize reads (the agent, its
// owner, the grants that speak for p), gathered for all of them in two
// queries.
func (s *Service) allowedAmong(ctx context.Context, p *principal.Principal, action string, cands []model.Agent) ([]AccessibleAgent, error) {
	owners, gs, err := s.candidateFacts(ctx, p, cands)
	if err != nil {
		return nil, err
	}
	byAgent := map[int64][]model.Grant{}
	for _, g := range gs {
		byAgent[g.AgentID] = append(byAgent[g.AgentID], g)
	}
	out := []AccessibleAgent{}
	for i := range cands {
		a := &cands[i]
		grants := byAgent[a.ID]
		if grants == nil {
			grants = []model.Grant{}
		}
		d, err := s.decide(ctx, &facts{ability: "authorize", principal: p, action: action, agent: a, owner: owners[a.OwnerID], grants: grants})
		if err != nil {
			return nil, err
		}
		if d.Allow {
			out = append(out, AccessibleAgent{Agent: *a, Role: d.Role})
		}
	}
	return out, nil
}

func resourcePage(found []AccessibleAgent, next int64) SearchPage[AccessibleAgent] {
	page := SearchPage[AccessibleAgent]{Results: found}
	if next != 0 {
		page.Next = itoa(next)
	}
	return page
}

// deniedAsNone turns the policy's refusal to list for the subject into an
// empty result: the subject is not the caller, so it is an answer.
func deniedAsNone(err error) error {
	var de *DeniedError
	if errors.As(err, &de) {
		return nil
	}
	return err
}

// cursorID reads an agent id cursor.
func cursorID(after string) (int64, error) {
	if after == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(after, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalid("invalid_page_token", "page.token", "the page token does not name a position")
	}
	return id, nil
}

// SubjectResult is one subject found by SearchSubjects.
type SubjectResult struct {
	Subject Subject
	// Key orders the results and is the cursor after this one.
	Key string
}

// SearchSubjects answers the AuthZEN subject search: the subjects of type
// subjectType (SubjectUser or SubjectAudience) that may perform q.Action
// on agent (or hold at least q.MinimumRole there). Go gathers the
// candidates (see subjectCandidates) and the policy decides each, with the
// facts Authorize and CanAccess would gather for it. An unknown agent finds
// nothing.
func (s *Service) SearchSubjects(ctx context.Context, agent, subjectType string, q SearchQuery) (SearchPage[SubjectResult], error) {
	none := SearchPage[SubjectResult]{Results: []SubjectResult{}}
	if err := s.validSearch(&q); err != nil {
		return none, err
	}
	if subjectType != SubjectUser && subjectType != SubjectAudience {
		return none, invalid("invalid_subject", "subject.type", `a subject search is for subject.type "user" or "audience"`)
	}
	a, owner, err := s.loadAgent(ctx, agent)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return none, nil
	}
	if err != nil {
		return none, prefixAgentField(err)
	}
	all, err := s.st.ListGrants(ctx, a.ID)
	if err != nil {
		return none, storeErr(err)
	}
	allows := func(p *principal.Principal) (bool, error) {
		f := &facts{principal: p, agent: &a, owner: owner, grants: grantsFor(all, p)}
		if q.Action == ActionAccess {
			f.ability, f.minimumRole = "can-access-agent", q.MinimumRole
		} else {
			f.ability, f.action = "authorize", q.Action
		}
		d, err := s.decide(ctx, f)
		return d.Allow, err
	}
	cands, err := s.subjectCandidates(ctx, subjectType, &a, all, allows)
	if err != nil {
		return none, err
	}
	out := none
	for _, c := range cands {
		if c.Key <= q.After && q.After != "" {
			continue
		}
		if len(out.Results) == q.Limit {
			out.Next = out.Results[len(out.Results)-1].Key
			break
		}
		ok, err := allows(c.p)
		if err != nil {
			return none, err
		}
		if ok {
			out.Results = append(out.Results, c.SubjectResult)
		}
	}
	return out, nil
}

type subjectCandidate struct {
	SubjectResult
	p *principal.Principal
}

// subjectCandidates lists, ordered by key, the principals of subjectType
// that allows may accept on agent a with grants. For users: its owner, the
// users its grants name, and the other users when allows accepts a user
// with their roles who is none of those (asked once per distinct set of
// roles: such a user differs from them only by its id, which the policy
// reads for ownership and user grants alone; this covers site
// administrators and grants to the public). For audiences: the audiences
// its grants name and the public audience.
func (s *Service) subjectCandidates(ctx context.Context, subjectType string, a *model.Agent, grants []model.Grant, allows func(*principal.Principal) (bool, error)) ([]subjectCandidate, error) {
	var out []subjectCandidate
	if subjectType == SubjectUser {
		related := map[int64]bool{a.OwnerID: true}
		for _, g := range grants {
			if ref, err := principal.ParseRef(g.Principal); err == nil && ref.Type == principal.TypeUser {
				if id, ok := ref.UserID(); ok {
					related[id] = true
				}
			}
		}
		users, err := s.st.ListUsers(ctx)
		if err != nil {
			return nil, storeErr(err)
		}
		byRoles := map[string]bool{} // sorted roles → allows accepts an unrelated user with them
		for i := range users {
			u := &users[i]
			if u.Status != model.StatusActive {
				continue
			}
			if !related[u.ID] {
				ok, err := unrelatedAllowed(u.Roles, byRoles, allows)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			out = append(out, subjectCandidate{
				SubjectResult: SubjectResult{Subject: Subject{Type: SubjectUser, ID: u.Login}, Key: sortableID(u.ID)},
				p:             principal.ForUser(u, nil),
			})
		}
	} else {
		names := map[string]bool{principal.PublicAudience: true}
		for _, g := range grants {
			if ref, err := principal.ParseRef(g.Principal); err == nil && ref.Type == principal.TypeAudience {
				names[ref.String()] = true
			}
		}
		for name := range names {
			p := principal.Anonymous()
			if name != principal.PublicAudience {
				p = principal.ForAudiences([]string{name})
			}
			out = append(out, subjectCandidate{SubjectResult: SubjectResult{Subject: Subject{Type: SubjectAudience, ID: name}, Key: name}, p: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// unrelatedAllowed asks allows about an active user with roles and an id no
// stored user has, remembering the answer in known by the set of roles.
func unrelatedAllowed(roles []string, known map[string]bool, allows func(*principal.Principal) (bool, error)) (bool, error) {
	sorted := slices.Clone(roles)
	slices.Sort(sorted)
	key := strings.Join(sorted, "\x00")
	if ok, seen := known[key]; seen {
		return ok, nil
	}
	ok, err := allows(principal.ForUser(&model.User{ID: -1, Roles: roles, Status: model.StatusActive}, nil))
	known[key] = ok
	return ok, err
}

// sortableID renders an id so that string order is numeric order.
func sortableID(id int64) string {
	s := itoa(id)
	return strings.Repeat("0", 19-len(s)) + s
}

// grantsFor keeps the grants that speak for p: what GrantsFor would read
// for it, so the decision's input is the one Authorize would build.
func grantsFor(all []model.Grant, p *principal.Principal) []model.Grant {
	ids := identities(p)
	out := []model.Grant{}
	for _, g := range all {
		for _, id := range ids {
			if g.Principal == id {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// prefixAgentField names the AuthZEN member a service validation error on
// the agent came from.
func prefixAgentField(err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) && ve.Field == "agent" {
		out := *ve
		out.Field = "resource.id"
		return &out
	}
	return err
}

// SearchActions answers the AuthZEN action search: the runtime actions of
// the active bundle, ordered by name, that sub may perform on agent, each
// decided by Authorize over facts gathered once. A subject that names no
// live principal, or an unknown agent, finds nothing.
func (s *Service) SearchActions(ctx context.Context, sub Subject, agent string, q SearchQuery) (SearchPage[string], error) {
	none := SearchPage[string]{Results: []string{}}
	if q.Limit <= 0 || q.Limit > maxPage {
		q.Limit = defaultPage
	}
	p, ok, err := s.SubjectPrincipal(ctx, sub)
	if err != nil || !ok {
		return none, err
	}
	actions := s.engine.Activation().Actions
	if len(actions) == 0 {
		return none, nil
	}
	f, err := s.authorizeFacts(ctx, p, AuthorizeRequest{Action: actions[0], Agent: agent})
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return none, nil
	}
	if err != nil {
		return none, prefixAgentField(err)
	}
	out := none
	for _, action := range actions {
		if q.After != "" && action <= q.After {
			continue
		}
		if len(out.Results) == q.Limit {
			out.Next = out.Results[len(out.Results)-1]
			break
		}
		f.action = action
		d, err := s.decide(ctx, f)
		if err != nil {
			return none, err
		}
		if d.Allow {
			out.Results = append(out.Results, action)
		}
	}
	return out, nil
}
