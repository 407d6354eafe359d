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
// candidates (see eachUserCandidate, audienceCandidates) and the policy
// decides each, with the facts Authorize and CanAccess would gather for it.
// An unknown agent finds nothing.
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
	question := func(p *principal.Principal) *facts {
		f := &facts{principal: p, agent: &a, owner: owner, grants: grantsFor(all, p)}
		if q.Action == ActionAccess {
			f.ability, f.minimumRole = "can-access-agent", q.MinimumRole
		} else {
			f.ability, f.action = "authorize", q.Action
		}
		return f
	}
	page := subjectPage{SearchPage: none, limit: q.Limit, allows: func(p *principal.Principal) (bool, error) {
		d, err := s.decide(ctx, question(p))
		return d.Allow, err
	}}
	if subjectType == SubjectAudience {
		for _, c := range audienceCandidates(all) {
			if q.After != "" && c.Key <= q.After {
				continue
			}
			if more, err := page.offer(c); err != nil || !more {
				return page.result(none, err)
			}
		}
		return page.result(none, nil)
	}
	after, err := cursorID(q.After)
	if err != nil {
		return none, err
	}
	probe := func(p *principal.Principal) (bool, error) {
		d, err := s.probe(ctx, question(p))
		return d.Allow, err
	}
	err = s.eachUserCandidate(ctx, &a, all, after, max(q.Limit+1, minChunk), probe, page.offer)
	return page.result(none, err)
}

// subjectPage fills one page of a subject search: offered candidates, in
// key order, are decided by allows until the page is full.
type subjectPage struct {
	SearchPage[SubjectResult]
	limit  int
	allows func(*principal.Principal) (bool, error)
}

// offer decides c and keeps it if allowed. On a full page it decides
// nothing, sets the cursor (another candidate exists) and says to stop.
func (pg *subjectPage) offer(c subjectCandidate) (more bool, err error) {
	if len(pg.Results) == pg.limit {
		pg.Next = pg.Results[len(pg.Results)-1].Key
		return false, nil
	}
	ok, err := pg.allows(c.p)
	if ok {
		pg.Results = append(pg.Results, c.SubjectResult)
	}
	return err == nil, err
}

func (pg *subjectPage) result(none SearchPage[SubjectResult], err error) (SearchPage[SubjectResult], error) {
	if err != nil {
		return none, err
	}
	return pg.SearchPage, nil
}

type subjectCandidate struct {
	SubjectResult
	p *principal.Principal
}

// eachUserCandidate offers to yield, in id order after afterID, the active
// users that may be allowed on agent a with grants: its owner, the users its
// grants name, and the other users when probe accepts a user with their
// roles who is none of those (asked once per distinct set of roles: such a
// user differs from them only by its id, which the policy reads for
// ownership and user grants alone; this covers site administrators and
// grants to the public). It reads the users chunk at a time and stops when
// yield says so, so a page reads the users up to its last candidate, not
// the whole table.
func (s *Service) eachUserCandidate(ctx context.Context, a *model.Agent, grants []model.Grant, afterID int64, chunk int,
	probe func(*principal.Principal) (bool, error), yield func(subjectCandidate) (bool, error),
) error {
	related := map[int64]bool{a.OwnerID: true}
	for _, g := range grants {
		if ref, err := principal.ParseRef(g.Principal); err == nil && ref.Type == principal.TypeUser {
			if id, ok := ref.UserID(); ok {
				related[id] = true
			}
		}
	}
	byRoles := map[string]bool{} // sorted roles → probe accepts an unrelated user with them
	for {
		users, err := s.st.ListUsersAfter(ctx, afterID, chunk)
		if err != nil {
			return storeErr(err)
		}
		for i := range users {
			u := &users[i]
			if u.Status != model.StatusActive {
				continue
			}
			if !related[u.ID] {
				ok, err := unrelatedAllowed(u.Roles, byRoles, probe)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			more, err := yield(subjectCandidate{
				SubjectResult: SubjectResult{Subject: Subject{Type: SubjectUser, ID: u.Login}, Key: sortableID(u.ID)},
				p:             principal.ForUser(u, nil),
			})
			if err != nil || !more {
				return err
			}
		}
		if len(users) < chunk {
			return nil
		}
		afterID = users[len(users)-1].ID
	}
}

// audienceCandidates lists, ordered by key, the audiences the grants name
// and the public audience.
func audienceCandidates(grants []model.Grant) []subjectCandidate {
	names := map[string]bool{principal.PublicAudience: true}
	for _, g := range grants {
		if ref, err := principal.ParseRef(g.Principal); err == nil && ref.Type == principal.TypeAudience {
			names[ref.String()] = true
		}
	}
	out := make([]subjectCandidate, 0, len(names))
	for name := range names {
		p := principal.Anonymous()
		if name != principal.PublicAudience {
			p = principal.ForAudiences([]string{name})
		}
		out = append(out, subjectCandidate{SubjectResult: SubjectResult{Subject: Subject{Type: SubjectAudience, ID: name}, Key: name}, p: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// unrelatedAllowed asks probe about an active user with roles and an id no
// stored user has, remembering the answer in known by the set of roles.
func unrelatedAllowed(roles []string, known map[string]bool, probe func(*principal.Principal) (bool, error)) (bool, error) {
	sorted := slices.Clone(roles)
	slices.Sort(sorted)
	key := strings.Join(sorted, "\x00")
	if ok, seen := known[key]; seen {
		return ok, nil
	}
	ok, err := probe(principal.ForUser(&model.User{ID: -1, Roles: roles, Status: model.StatusActive}, nil))
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
	act, err := s.activation()
	if err != nil {
		return none, err
	}
	actions := act.Actions
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
