package authz

import (
	"context"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// variants returns facts that differ from a base in exactly one fact each,
// plus some that differ only in things input() does not render.
func variants() []*facts {
	base := func() *facts {
		owner := &model.User{ID: 3, Login: "chubes", Roles: []string{"editor"}, Status: "active"}
		agent := &model.Agent{ID: 7, Slug: "bot", OwnerID: 3, Status: "active", ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search"}}}
		return &facts{
			ability:   "authorize",
			principal: &principal.Principal{Kind: principal.KindToken, ID: "token:12", User: owner, Token: &model.Token{ID: 12, AgentID: 7}, Agent: agent},
			agent:     agent, owner: owner, grants: []model.Grant{},
			action: "use_tools", tool: "web_search", hasTool: true,
		}
	}
	caps := func(c ...string) *[]string { return &c }
	mut := []func(f *facts){
		func(f *facts) {},
		func(f *facts) { f.ability = "can-access-agent" },
		func(f *facts) { f.action = "chat" },
		func(f *facts) { f.tool = "shell" },
		func(f *facts) { f.hasTool = false; f.tool = "" },
		func(f *facts) { f.tool = "" }, // tool present but empty is not "no tool"
		func(f *facts) { f.minimumRole = "operator" },
		func(f *facts) { f.principal.Token = &model.Token{ID: 12, AgentID: 7, Capabilities: caps()} },
		func(f *facts) { f.principal.Token = &model.Token{ID: 12, AgentID: 7, Capabilities: caps("a")} },
		func(f *facts) { f.principal.Token = &model.Token{ID: 12, AgentID: 7, Capabilities: caps("a", "b")} },
		func(f *facts) { f.principal.Token = &model.Token{ID: 12, AgentID: 7, Capabilities: caps("ab")} },
		func(f *facts) { f.principal.Token = &model.Token{ID: 13, AgentID: 7} },
		func(f *facts) { f.principal.Token = &model.Token{ID: 12, AgentID: 8} },
		func(f *facts) { f.principal.ID = "token:99" },
		func(f *facts) { f.principal.Kind = principal.KindUser },
		func(f *facts) { f.principal.Audiences = []string{"audience:acme"} },
		func(f *facts) { u := *f.principal.User; u.Roles = []string{"author"}; f.principal.User = &u },
		func(f *facts) { u := *f.principal.User; u.Roles = []string{"editor", "author"}; f.principal.User = &u },
		func(f *facts) { u := *f.principal.User; u.Status = "disabled"; f.principal.User = &u },
		func(f *facts) { u := *f.principal.User; u.ID = 4; f.principal.User = &u },
		func(f *facts) { f.principal.User = nil },
		func(f *facts) { a := *f.agent; a.Status = "inactive"; f.agent = &a },
		func(f *facts) { a := *f.agent; a.ID = 8; f.agent = &a },
		func(f *facts) { a := *f.agent; a.OwnerID = 4; f.agent = &a },
		func(f *facts) { a := *f.agent; a.ToolPolicy = nil; f.agent = &a },
		func(f *facts) {
			a := *f.agent
			a.ToolPolicy = &model.ToolPolicy{Mode: "deny", Tools: []string{"web_search"}}
			f.agent = &a
		},
		func(f *facts) {
			a := *f.agent
			a.ToolPolicy = &model.ToolPolicy{Mode: "allow", Tools: []string{}}
			f.agent = &a
		},
		func(f *facts) { f.owner = nil },
		func(f *facts) { o := *f.owner; o.Roles = []string{"subscriber"}; f.owner = &o },
		func(f *facts) { f.agent = nil },
		func(f *facts) { f.grants = nil },
		func(f *facts) { f.grants = []model.Grant{{AgentID: 7, Principal: "user:5", Role: "operator"}} },
		func(f *facts) { f.grants = []model.Grant{{AgentID: 7, Principal: "user:5", Role: "viewer"}} },
		func(f *facts) { f.grants = []model.Grant{{AgentID: 8, Principal: "user:5", Role: "operator"}} },
		func(f *facts) { f.request("token_request", item("capabilities", ast.NullTerm())) },
		func(f *facts) { f.request("token_request", item("capabilities", optStrings(caps()))) },
		func(f *facts) { f.request("grant_request", item("role", str("admin"))) },
		func(f *facts) { f.request("grant_request", item("role", str("viewer"))) },
		func(f *facts) { f.request("agent_update", item("tool_policy", ast.NullTerm())) },
		func(f *facts) { f.request("agent_update") },
		func(f *facts) {
			at := time.Unix(1_800_000_000, 0)
			tok := *f.principal.Token
			tok.ExpiresAt = &at
			f.principal = &principal.Principal{Kind: f.principal.Kind, ID: f.principal.ID, User: f.principal.User, Token: &tok}
		},
		func(f *facts) { f.resource = &model.User{ID: 3} },
		func(f *facts) { f.candidates = []model.Agent{} },
		func(f *facts) { f.candidates = []model.Agent{{ID: 9, OwnerID: 3, Status: "active"}} },
		// Facts input() does not render must not split the memo either way;
		// they are listed to show the key ignores them too.
		func(f *facts) { a := *f.agent; a.Slug = "renamed"; a.Name = "x"; f.agent = &a },
		func(f *facts) { u := *f.principal.User; u.Login = "other"; f.principal.User = &u },
	}
	out := make([]*facts, len(mut))
	for i, m := range mut {
		f := base()
		m(f)
		out[i] = f
	}
	return out
}

// TestMemoKeyDistinguishesInputs: two facts share a memo key exactly when
// they render the same policy input. A key that merged two inputs would
// serve one caller another's decision.
func TestMemoKeyDistinguishesInputs(t *testing.T) {
	vs := variants()
	for i, a := range vs {
		ka, ok := a.key(1)
		if !ok {
			t.Fatalf("variant %d is not memoizable", i)
		}
		if kb, _ := a.key(2); kb == ka {
			t.Fatalf("variant %d: the bundle generation is not in the key", i)
		}
		for j, b := range vs {
			kb, _ := b.key(1)
			sameInput := a.input().Compare(b.input()) == 0
			if sameInput != (ka == kb) {
				t.Fatalf("variants %d and %d: same input = %v but same key = %v\n%v\n%v", i, j, sameInput, ka == kb, a.input(), b.input())
			}
		}
	}
}

func TestMemoSkipsEvaluationOnlyForIdenticalInput(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !eng.Activation().Deterministic {
		t.Fatal("the default policy must be deterministic, or the memo is off")
	}
	svc := New(nil, eng, nil, Config{})
	vs := variants()
	for _, f := range vs[:5] {
		d1, memo1, err := svc.evaluate(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		d2, memo2, err := svc.evaluate(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if memo1 || !memo2 {
			t.Fatalf("first evaluation memoized=%v, second=%v; want false, true", memo1, memo2)
		}
		if d1.Allow != d2.Allow || len(d1.DeniedBy) != len(d2.DeniedBy) {
			t.Fatalf("memo answered %+v for %+v", d2, d1)
		}
	}
}
