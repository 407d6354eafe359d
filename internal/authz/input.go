package authz

import (
	"strconv"
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

func agentTerm(a *model.Agent, owner *model.User) *ast.Term {
	items := [][2]*ast.Term{
		item("id", num(a.ID)),
		item("owner_id", num(a.OwnerID)),
		item("status", str(a.Status)),
		item("tool_policy", toolPolicyTerm(a.ToolPolicy)),
	}
	if owner != nil {
		items = append(items, item("owner", userTerm(owner)))
	}
	return ast.ObjectTerm(items...)
}

func principalTerm(p *principal.Principal) *ast.Term {
	items := [][2]*ast.Term{item("kind", str(string(p.Kind))), item("id", str(p.ID))}
	if p.User != nil {
		items = append(items, item("user", userTerm(p.User)))
	}
	if len(p.Audiences) > 0 {
		items = append(items, item("audiences", stringsTerm(p.Audiences)))
	}
	if p.Token != nil {
		items = append(items, item("token", ast.ObjectTerm(
			item("id", num(p.Token.ID)),
			item("agent_id", num(p.Token.AgentID)),
			item("capabilities", optStrings(p.Token.Capabilities)),
			item("expires_at", timeTerm(p.Token.ExpiresAt)),
		)))
	}
	return ast.ObjectTerm(items...)
}

func grantsTerm(gs []model.Grant) *ast.Term {
	ts := make([]*ast.Term, len(gs))
	for i, g := range gs {
		ts[i] = ast.ObjectTerm(
			item("agent_id", num(g.AgentID)),
			item("principal", str(g.Principal)),
			item("role", str(g.Role)),
		)
	}
	return ast.ArrayTerm(ts...)
}

// input renders the facts as the policy's input document.
func (f *facts) input() ast.Value {
	items := [][2]*ast.Term{item("ability", str(f.ability))}
	if f.principal != nil {
		items = append(items, item("principal", principalTerm(f.principal)))
	}
	if f.agent != nil {
		items = append(items, item("agent", agentTerm(f.agent, f.owner)))
	}
	if f.grants != nil || f.candidates != nil {
		items = append(items, item("grants", grantsTerm(f.grants)))
	}
	if f.action != "" {
		items = append(items, item("action", str(f.action)))
	}
	if f.hasTool {
		items = append(items, item("tool", str(f.tool)))
	}
	if f.minimumRole != "" {
		items = append(items, item("minimum_role", str(f.minimumRole)))
	}
	items = append(items, f.requests...)
	if f.resource != nil {
		items = append(items, item("resource", ast.ObjectTerm(item("owner_id", num(f.resource.ID)))))
	}
	if f.candidates != nil {
		ts := make([]*ast.Term, len(f.candidates))
		for i := range f.candidates {
			a := &f.candidates[i]
			ts[i] = agentTerm(a, f.owners[a.OwnerID])
		}
		items = append(items, item("agents", ast.ArrayTerm(ts...)))
	}
	return ast.NewObject(items...)
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
