package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/policy"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// These benchmarks measure one decision in-process against the default
// policy: the input built as ast values plus one prepared evaluation, with
// no store and no HTTP. `make bench` runs them.

func benchEngine(b *testing.B, roles int) *policy.Engine {
	b.Helper()
	ctx := context.Background()
	bdl, err := policy.EmbeddedBundle()
	if err != nil {
		b.Fatal(err)
	}
	if roles > 0 {
		// Grow the role table: `roles` extra roles of 50 capabilities each.
		cfg := bdl.Data["agentauthz"].(map[string]any)["config"].(map[string]any)
		rs := cfg["roles"].(map[string]any)
		for i := 0; i < roles; i++ {
			caps := map[string]any{}
			for c := 0; c < 50; c++ {
				caps[fmt.Sprintf("cap_%d_%d", i, c)] = true
			}
			rs[fmt.Sprintf("role_%d", i)] = caps
		}
	}
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if roles > 0 {
		if err := eng.ActivateBundle(ctx, bdl, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	return eng
}

var (
	benchOwner = &model.User{ID: 3, Roles: []string{"editor"}, Status: "active"}
	benchAgent = &model.Agent{ID: 7, OwnerID: 3, Status: "active", ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search"}}}
	benchToken = &model.Token{ID: 12, AgentID: 7}
)

func authorizeFacts() *facts {
	return &facts{
		ability:   "authorize",
		principal: &principal.Principal{Kind: principal.KindToken, ID: "token:12", User: benchOwner, Token: benchToken, Agent: benchAgent},
		agent:     benchAgent, owner: benchOwner, grants: []model.Grant{},
		action: "use_tools", tool: "web_search", hasTool: true,
	}
}

// BenchmarkAuthorizeDecision is one fresh evaluation of the runtime check.
func BenchmarkAuthorizeDecision(b *testing.B) {
	for _, roles := range []int{0, 20, 200} {
		b.Run(fmt.Sprintf("extra_roles=%d", roles), func(b *testing.B) {
			eng := benchEngine(b, roles)
			ctx := context.Background()
			f := authorizeFacts()
			b.ReportAllocs()
			for b.Loop() {
				d, err := eng.Decide(ctx, f.input())
				if err != nil || !d.Allow {
					b.Fatalf("%v %+v", err, d)
				}
			}
		})
	}
}

// BenchmarkAuthorizeEvalOnly is the evaluation alone, on an input built
// once: BenchmarkAuthorizeDecision minus BenchmarkBuildInput/ast.
func BenchmarkAuthorizeEvalOnly(b *testing.B) {
	eng := benchEngine(b, 0)
	ctx := context.Background()
	in := authorizeFacts().input()
	b.ReportAllocs()
	for b.Loop() {
		d, err := eng.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("%v %+v", err, d)
		}
	}
}

// BenchmarkAuthorizeMemoHit is the same question answered from the decision
// memo (what a repeated question costs in the service layer).
func BenchmarkAuthorizeMemoHit(b *testing.B) {
	eng := benchEngine(b, 0)
	svc := New(nil, eng, nil, Config{})
	ctx := context.Background()
	p := &principal.Principal{Kind: principal.KindToken, ID: "token:12", User: benchOwner, Token: benchToken, Agent: benchAgent}
	tool := "web_search"
	req := AuthorizeRequest{Action: "use_tools", Tool: &tool}
	if _, err := svc.Authorize(ctx, p, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := svc.Authorize(ctx, p, req)
		if err != nil || !res.Allow || !res.Memoized {
			b.Fatalf("%v %+v", err, res)
		}
	}
}

// BenchmarkCanAccessGrants shows how a user's access check scales with the
// number of grants on the agent that concern the caller's identities.
func BenchmarkCanAccessGrants(b *testing.B) {
	eng := benchEngine(b, 0)
	ctx := context.Background()
	user := &model.User{ID: 5, Roles: []string{"subscriber"}, Status: "active"}
	auds := []string{}
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			gs := make([]model.Grant, 0, n)
			for i := len(auds); i < n; i++ {
				auds = append(auds, fmt.Sprintf("audience:org%d", i))
			}
			for i := 0; i < n; i++ {
				gs = append(gs, model.Grant{AgentID: 7, Principal: auds[i], Role: []string{"operator", "viewer"}[i%2]})
			}
			f := &facts{ability: "can-access-agent", principal: &principal.Principal{Kind: principal.KindUser, ID: "user:5", User: user, Audiences: auds[:n]},
				agent: benchAgent, owner: benchOwner, grants: gs, minimumRole: "operator"}
			b.ReportAllocs()
			for b.Loop() {
				d, err := eng.Decide(ctx, f.input())
				if err != nil || !d.Allow {
					b.Fatalf("%v %+v", err, d)
				}
			}
		})
	}
}

// BenchmarkListAccessible evaluates list-accessible-agents over n candidates.
func BenchmarkListAccessible(b *testing.B) {
	eng := benchEngine(b, 0)
	ctx := context.Background()
	user := &model.User{ID: 5, Roles: []string{"subscriber"}, Status: "active"}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			cands := make([]model.Agent, n)
			gs := make([]model.Grant, n)
			for i := range cands {
				cands[i] = model.Agent{ID: int64(i + 1), OwnerID: 3, Status: "active"}
				gs[i] = model.Grant{AgentID: int64(i + 1), Principal: "user:5", Role: "viewer"}
			}
			f := &facts{ability: "list-accessible-agents", principal: &principal.Principal{Kind: principal.KindUser, ID: "user:5", User: user},
				candidates: cands, owners: map[int64]*model.User{3: benchOwner}, grants: gs}
			b.ReportAllocs()
			for b.Loop() {
				d, err := eng.Decide(ctx, f.input())
				if err != nil || len(d.Accessible) != n {
					b.Fatalf("%v %d", err, len(d.Accessible))
				}
			}
		})
	}
}

// BenchmarkBuildInput is the cost of building the authorize input by hand,
// next to the JSON-and-reflection route it replaces.
func BenchmarkBuildInput(b *testing.B) {
	f := authorizeFacts()
	b.Run("ast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.input()
		}
	})
	b.Run("json", func(b *testing.B) {
		doc, err := ast.JSON(f.input())
		if err != nil {
			b.Fatal(err)
		}
		js, _ := json.Marshal(doc)
		b.ReportAllocs()
		for b.Loop() {
			var v any
			_ = json.Unmarshal(js, &v)
			_, _ = ast.InterfaceToValue(v)
		}
	})
}
