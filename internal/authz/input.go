package authz

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// The policy input is built as ast values by hand: converting Go structs
// through JSON or reflection costs more than the evaluation on the hot path.
// TestInputMatchesJSON proves these builders equal the documented JSON form.

// facts is everything one decision may read.
type facts struct {
	ability      string
	principal    *principal.Principal
	agent        *model.Agent
	owner        *model.User // owner of agent; nil if missing
	grants       []model.Grant
	action, tool string
	hasTool      bool
	minimumRole  string
	resource     *model.User // create-agent: intended owner
	candidates   []model.Agent
	owners       map[int64]*model.User // owners of candidates
	// requests are the management requests' own input documents
	// (token_request, grant_request, agent_update, target_token,
	// user_request, target_user), rendered once: input() adds them as
	// they are and the memo key is derived from their rendering.
	requests [][2]*ast.Term
}

// request adds a top-level input document describing what a management
// ability would change; the escalation rules read it.
func (f *facts) request(name string, fields ...[2]*ast.Term) *facts {
	f.requests = append(f.requests, item(name, ast.ObjectTerm(fields...)))
	return f
}

// str, num and item reuse one immutable term for every key of the input
// document and for the values that recur in it (kinds, statuses, modes,
// small ids), as OPA's own interning does: building an input then
// allocates only for what is particular to the request.
func str(s string) *ast.Term {
	if t, ok := internedTerms[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}
func num(n int64) *ast.Term                   { return ast.InternedTerm(n) }
func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(str(k), v) }

// internedTerms is read-only after init.
var internedTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, s := range []string{
		// keys
		"ability", "principal", "kind", "id", "user", "roles", "status", "audiences",
		"token", "agent_id", "capabilities", "expires_at", "agent", "owner_id",
		"tool_policy", "mode", "tools", "owner", "grants", "role", "action", "tool",
		"minimum_role", "resource", "agents",
		// recurring values
		"token", "user", "audience", "anonymous", "operator", "active", "inactive",
		"disabled", "allow", "deny", "authorize", "viewer", "admin",
		"audience:public",
	} {
		m[s] = ast.StringTerm(s)
	}
	return m
}()

func stringsTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = str(s)
	}
	return ast.ArrayTerm(ts...)
}

// timeTerm renders an optional instant as RFC 3339 in UTC, or null.
func timeTerm(t *time.Time) *ast.Term {
	if t == nil {
		return ast.InternedNullTerm
	}
	return str(t.UTC().Format(time.RFC3339Nano))
}

func optStrings(ss *[]string) *ast.Term {
	if ss == nil {
		return ast.InternedNullTerm
	}
	return stringsTerm(*ss)
}

func userTerm(u *model.User) *ast.Term {
	return ast.ObjectTerm(
		item("id", num(u.ID)),
		item("roles", stringsTerm(u.Roles)),
		item("status", str(u.Status)),
	)
}

func toolPolicyTerm(tp *model.ToolPolicy) *ast.Term {
	if tp == nil {
		return ast.InternedNullTerm
	}
	return ast.ObjectTerm(item("mode", str(tp.Mode)), item("tools", stringsTerm(tp.Tools)))
}

// sink receives the input document value by value, in document order.
// facts.render is the ONE description of the input: input() builds it as
// ast for the policy, key() encodes it for the decision memo, so the memo
// can never leave out a fact the policy reads.
type sink interface {
	// open begins an object (or an array) of about n values.
	open(array bool, n int)
	close()
	// field names the next value of the object being built.
	field(name string)
	str(s string)
	num(n int64)
	null()
	// term is a value rendered elsewhere (a management request document).
	term(t *ast.Term)
	// user renders u as renderUser describes; a sink may reuse what it
	// built for the same user earlier in the document.
	user(u *model.User)
}

// render describes the facts as the policy's input document.
func (f *facts) render(s sink) {
	s.open(false, 12)
	s.field("ability")
	s.str(f.ability)
	if f.principal != nil {
		s.field("principal")
		renderPrincipal(s, f.principal)
	}
	if f.agent != nil {
		s.field("agent")
		renderAgent(s, f.agent, f.owner)
	}
	if f.grants != nil || f.candidates != nil {
		s.field("grants")
		s.open(true, len(f.grants))
		for _, g := range f.grants {
			s.open(false, 3)
			s.field("agent_id")
			s.num(g.AgentID)
			s.field("principal")
			s.str(g.Principal)
			s.field("role")
			s.str(g.Role)
			s.close()
		}
		s.close()
	}
	if f.action != "" {
		s.field("action")
		s.str(f.action)
	}
	if f.hasTool {
		s.field("tool")
		s.str(f.tool)
	}
	if f.minimumRole != "" {
		s.field("minimum_role")
		s.str(f.minimumRole)
	}
	for _, r := range f.requests {
		s.field(string(r[0].Value.(ast.String)))
		s.term(r[1])
	}
	if f.resource != nil {
		s.field("resource")
		s.open(false, 1)
		s.field("owner_id")
		s.num(f.resource.ID)
		s.close()
	}
	if f.candidates != nil {
		s.field("agents")
		s.open(true, len(f.candidates))
		for i := range f.candidates {
			a := &f.candidates[i]
			renderAgent(s, a, f.owners[a.OwnerID])
		}
		s.close()
	}
	s.close()
}

func renderStrings(s sink, ss []string) {
	s.open(true, len(ss))
	for _, x := range ss {
		s.str(x)
	}
	s.close()
}

func renderUser(s sink, u *model.User) {
	s.open(false, 3)
	s.field("id")
	s.num(u.ID)
	s.field("roles")
	renderStrings(s, u.Roles)
	s.field("status")
	s.str(u.Status)
	s.close()
}

func renderAgent(s sink, a *model.Agent, owner *model.User) {
	s.open(false, 5)
	s.field("id")
	s.num(a.ID)
	s.field("owner_id")
	s.num(a.OwnerID)
	s.field("status")
	s.str(a.Status)
	s.field("tool_policy")
	if tp := a.ToolPolicy; tp != nil {
		s.open(false, 2)
		s.field("mode")
		s.str(tp.Mode)
		s.field("tools")
		renderStrings(s, tp.Tools)
		s.close()
	} else {
		s.null()
	}
	if owner != nil {
		s.field("owner")
		s.user(owner)
	}
	s.close()
}

func renderPrincipal(s sink, p *principal.Principal) {
	s.open(false, 5)
	s.field("kind")
	s.str(string(p.Kind))
	s.field("id")
	s.str(p.ID)
	if p.User != nil {
		s.field("user")
		s.user(p.User)
	}
	if len(p.Audiences) > 0 {
		s.field("audiences")
		renderStrings(s, p.Audiences)
	}
	if t := p.Token; t != nil {
		s.field("token")
		s.open(false, 4)
		s.field("id")
		s.num(t.ID)
		s.field("agent_id")
		s.num(t.AgentID)
		s.field("capabilities")
		if t.Capabilities == nil {
			s.null()
		} else {
			renderStrings(s, *t.Capabilities)
		}
		s.field("expires_at")
		if t.ExpiresAt == nil {
			s.null()
		} else {
			s.str(t.ExpiresAt.UTC().Format(time.RFC3339Nano))
		}
		s.close()
	}
	s.close()
}

// input renders the facts as the policy's input document.
func (f *facts) input() ast.Value {
	b := astSinks.Get().(*astSink)
	f.render(b)
	v := b.out.Value
	b.reset()
	astSinks.Put(b)
	return v
}

// astSinks recycles the builders' scratch space: building an input then
// allocates only the document's own terms.
var astSinks = sync.Pool{New: func() any { return &astSink{} }}

// astSink builds the document as ast terms. The fields of the open objects
// and the elements of the open arrays wait in two scratch stacks, innermost
// last, until close() turns them into a term.
type astSink struct {
	stack []astFrame
	items [][2]*ast.Term
	elems []*ast.Term
	last  *ast.Term // the value added last
	out   *ast.Term
	// lastUser and lastUserTerm share one term between the places the same
	// user recurs in (a token's user is its own agent's owner).
	lastUser     *model.User
	lastUserTerm *ast.Term
}

type astFrame struct {
	array bool
	key   *ast.Term
	start int // where its fields (or elements) begin in items (or elems)
}

func (a *astSink) open(array bool, _ int) {
	fr := astFrame{array: array, start: len(a.items)}
	if array {
		fr.start = len(a.elems)
	}
	a.stack = append(a.stack, fr)
}

func (a *astSink) close() {
	fr := a.stack[len(a.stack)-1]
	a.stack = a.stack[:len(a.stack)-1]
	var t *ast.Term
	if fr.array {
		// an array keeps the slice it is built from: copy it out
		t = ast.ArrayTerm(slices.Clone(a.elems[fr.start:])...)
		clear(a.elems[fr.start:])
		a.elems = a.elems[:fr.start]
	} else {
		t = ast.NewTerm(ast.NewObject(a.items[fr.start:]...))
		clear(a.items[fr.start:])
		a.items = a.items[:fr.start]
	}
	a.value(t)
}

func (a *astSink) field(name string) { a.stack[len(a.stack)-1].key = str(name) }
func (a *astSink) str(s string)      { a.value(str(s)) }
func (a *astSink) num(n int64)       { a.value(num(n)) }
func (a *astSink) null()             { a.value(ast.InternedNullTerm) }
func (a *astSink) term(t *ast.Term)  { a.value(t) }

// user renders u once per document and shares the term where u recurs.
func (a *astSink) user(u *model.User) {
	if u != nil && u == a.lastUser {
		a.value(a.lastUserTerm)
		return
	}
	renderUser(a, u)
	a.lastUser, a.lastUserTerm = u, a.last
}

func (a *astSink) value(t *ast.Term) {
	a.last = t
	if len(a.stack) == 0 {
		a.out = t
		return
	}
	fr := &a.stack[len(a.stack)-1]
	if fr.array {
		a.elems = append(a.elems, t)
	} else {
		a.items = append(a.items, [2]*ast.Term{fr.key, t})
	}
}

// reset drops every reference into the document just built.
func (a *astSink) reset() {
	a.stack = a.stack[:0]
	a.last, a.out, a.lastUser, a.lastUserTerm = nil, nil, nil, nil
}

// identities are the principal strings whose grants may concern p. It is a
// superset gathered for the store query; the policy decides which count.
func identities(p *principal.Principal) []string {
	ids := make([]string, 0, 3+len(p.Audiences))
	add := func(id string) {
		for _, x := range ids {
			if x == id {
				return
			}
		}
		ids = append(ids, id)
	}
	if p.User != nil {
		add("user:" + strconv.FormatInt(p.User.ID, 10))
	}
	for _, a := range p.Audiences {
		add(a)
	}
	if p.Kind == principal.KindAudience || p.Kind == principal.KindAnonymous {
		add(p.ID)
	}
	add(publicAudience)
	return ids
}

// publicAudience is the identity every caller has: grants to it are the
// opt-in public access.
const publicAudience = "audience:public"
