package authz

import (
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// TestInputMatchesJSON proves the hand-built ast input equals the JSON
// document policies/README.md describes, field for field.
func TestInputMatchesJSON(t *testing.T) {
	caps := []string{"datamachine_chat"}
	empty := []string{}
	owner := &model.User{ID: 3, Login: "chubes", Roles: []string{"editor"}, Status: "active"}
	agent := &model.Agent{ID: 7, Slug: "bot", OwnerID: 3, Status: "active", ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search"}}}
	other := model.Agent{ID: 9, Slug: "other", OwnerID: 4, Status: "inactive"}
	tok := &model.Token{ID: 12, AgentID: 7, Capabilities: &caps}
	cases := []struct {
		name string
		f    facts
		want string
	}{
		{"token principal authorizing a tool", facts{
			ability:   "authorize",
			principal: &principal.Principal{Kind: principal.KindToken, ID: "token:12", User: owner, Token: tok, Agent: agent},
			agent:     agent, owner: owner, grants: []model.Grant{},
			action: "use_tools", tool: "web_search", hasTool: true,
		}, `{"ability":"authorize",
			"principal":{"kind":"token","id":"token:12","user":{"id":3,"roles":["editor"],"status":"active"},
			             "token":{"id":12,"agent_id":7,"capabilities":["datamachine_chat"],"expires_at":null}},
			"agent":{"id":7,"owner_id":3,"status":"active","tool_policy":{"mode":"allow","tools":["web_search"]},
			         "owner":{"id":3,"roles":["editor"],"status":"active"}},
			"grants":[],"action":"use_tools","tool":"web_search"}`},
		{"token with null capabilities minting an empty-ceiling token", facts{
			ability:   "create-agent-token",
			principal: &principal.Principal{Kind: principal.KindToken, ID: "token:13", User: owner, Token: &model.Token{ID: 13, AgentID: 7}, Agent: agent},
			agent:     agent, owner: owner,
			grants:   []model.Grant{{AgentID: 7, Principal: "user:5", Role: "operator"}},
			requests: [][2]*ast.Term{item("token_request", ast.ObjectTerm(item("capabilities", optStrings(&empty)), item("expires_at", timeTerm(nil))))},
		}, `{"ability":"create-agent-token",
			"principal":{"kind":"token","id":"token:13","user":{"id":3,"roles":["editor"],"status":"active"},
			             "token":{"id":13,"agent_id":7,"capabilities":null,"expires_at":null}},
			"agent":{"id":7,"owner_id":3,"status":"active","tool_policy":{"mode":"allow","tools":["web_search"]},
			         "owner":{"id":3,"roles":["editor"],"status":"active"}},
			"grants":[{"agent_id":7,"principal":"user:5","role":"operator"}],
			"token_request":{"capabilities":[],"expires_at":null}}`},
		{"audience listing candidates, one owner missing", facts{
			ability:     "list-accessible-agents",
			principal:   &principal.Principal{Kind: principal.KindAudience, ID: "audience:acme", Audiences: []string{"audience:acme"}},
			minimumRole: "operator",
			candidates:  []model.Agent{*agent, other},
			owners:      map[int64]*model.User{3: owner},
			grants:      []model.Grant{{AgentID: 9, Principal: "audience:acme", Role: "viewer"}},
		}, `{"ability":"list-accessible-agents",
			"principal":{"kind":"audience","id":"audience:acme","audiences":["audience:acme"]},
			"minimum_role":"operator",
			"grants":[{"agent_id":9,"principal":"audience:acme","role":"viewer"}],
			"agents":[{"id":7,"owner_id":3,"status":"active","tool_policy":{"mode":"allow","tools":["web_search"]},
			           "owner":{"id":3,"roles":["editor"],"status":"active"}},
			          {"id":9,"owner_id":4,"status":"inactive","tool_policy":null}]}`},
		{"operator creating an agent for a user", facts{
			ability:   "create-agent",
			principal: principal.Operator(),
			resource:  owner,
		}, `{"ability":"create-agent","principal":{"kind":"operator","id":"operator"},"resource":{"owner_id":3}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(c.want), &doc); err != nil {
				t.Fatal(err)
			}
			want, err := ast.InterfaceToValue(doc)
			if err != nil {
				t.Fatal(err)
			}
			got := c.f.input()
			if got.Compare(want) != 0 {
				t.Fatalf("input differs from the documented JSON\n got: %v\nwant: %v", got, want)
			}
		})
	}
}

func TestIdentitiesGatherEveryCandidateGrantHolder(t *testing.T) {
	cases := []struct {
		name string
		p    *principal.Principal
		want []string
	}{
		{"user with proxy audiences", &principal.Principal{Kind: principal.KindUser, ID: "user:3", User: &model.User{ID: 3}, Audiences: []string{"audience:acme"}},
			[]string{"user:3", "audience:acme", "audience:public"}},
		{"token acts for its owner", &principal.Principal{Kind: principal.KindToken, ID: "token:1", User: &model.User{ID: 4}},
			[]string{"user:4", "audience:public"}},
		{"audience", &principal.Principal{Kind: principal.KindAudience, ID: "audience:acme", Audiences: []string{"audience:acme"}},
			[]string{"audience:acme", "audience:public"}},
		{"anonymous is the public audience", principal.Anonymous(), []string{"audience:public"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := identities(c.p)
			if len(got) != len(c.want) {
				t.Fatalf("identities = %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("identities = %v, want %v", got, c.want)
				}
			}
		})
	}
}
