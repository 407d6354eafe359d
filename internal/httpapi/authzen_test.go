package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/model"
	"github.com/agentauthz/agentauthz/internal/principal"
)

const pepSecret = "pep-secret-0123456789abcdef"

func withPEPToken() envOption {
	return withHTTPConfig(func(c *httpapi.Config) { c.AuthZENPEPToken = pepSecret })
}

func pep() reqOption { return bearer(pepSecret) }

// decisionOf returns decision and context of an evaluation answer.
func decisionOf(t *testing.T, m map[string]any) (bool, map[string]any) {
	t.Helper()
	d, ok := m["decision"].(bool)
	if !ok {
		t.Fatalf("no boolean decision in %v", m)
	}
	ctx, _ := m["context"].(map[string]any)
	if id, _ := ctx["decision_id"].(string); id == "" {
		t.Fatalf("no decision_id in context of %v", m)
	}
	return d, ctx
}

func deniedBy(ctx map[string]any) []string {
	var out []string
	for _, v := range ctx["denied_by"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func evalBody(subType, subID, action, agent, tool string) string {
	props := ""
	if tool != "" {
		props = fmt.Sprintf(`, "properties": {"tool": %q}`, tool)
	}
	return fmt.Sprintf(`{"subject": {"type": %q, "id": %q}, "action": {"name": %q}, "resource": {"type": "agent", "id": %q%s}, "context": {"time": "2026-03-18T12:00:00Z"}}`,
		subType, subID, action, agent, props)
}

func TestAuthZENEvaluation(t *testing.T) {
	e := newEnv(t, withPEPToken())
	ctx := context.Background()
	revoked := e.mintToken("alpha", authz.CreateTokenRequest{Label: "doomed"})
	if _, err := e.svc.RevokeToken(ctx, principal.Operator(), "alpha", revoked.Token.ID); err != nil {
		t.Fatal(err)
	}
	chatOnly := e.mintToken("alpha", authz.CreateTokenRequest{Label: "chat", Capabilities: &[]string{"datamachine_chat"}})
	cases := []struct {
		name     string
		body     string
		allow    bool
		deniedBy string // one layer that must be named on a deny
	}{
		{name: "owner by login may chat", body: evalBody("user", "alice", "chat", "alpha", ""), allow: true},
		{name: "owner by id may chat (agent by id)", body: evalBody("user", itoa(e.alice.ID), "chat", itoa(e.alpha.ID), ""), allow: true},
		{name: "a user without a grant is denied with denied_by", body: evalBody("user", "bob", "chat", "alpha", ""), deniedBy: "agent_role"},
		{name: "an unknown user is a deny, not an error", body: evalBody("user", "nobody", "chat", "alpha", ""), deniedBy: "subject"},
		{name: "an unknown user id is a deny", body: evalBody("user", "424242", "chat", "alpha", ""), deniedBy: "subject"},
		{name: "the public audience without a grant is denied", body: evalBody("audience", "public", "chat", "alpha", ""), deniedBy: "agent_role"},
		{name: "an audience without a grant is denied", body: evalBody("audience", "audience:acme", "chat", "alpha", ""), deniedBy: "agent_role"},
		{name: "a token subject by id acts on its agent", body: evalBody("agent_token", itoa(e.alphaTokenID), "chat", "alpha", ""), allow: true},
		{name: "a token subject within its capabilities", body: evalBody("agent_token", itoa(chatOnly.Token.ID), "chat", "alpha", ""), allow: true},
		{name: "a token subject beyond its capabilities", body: evalBody("agent_token", itoa(chatOnly.Token.ID), "use_tools", "alpha", "web_search"), deniedBy: "token_ceiling"},
		{name: "a revoked token subject is a deny", body: evalBody("agent_token", itoa(revoked.Token.ID), "chat", "alpha", ""), deniedBy: "subject"},
		{name: "an unknown token id is a deny", body: evalBody("agent_token", "999999", "chat", "alpha", ""), deniedBy: "subject"},
		{name: "an unknown agent is a deny", body: evalBody("user", "alice", "chat", "ghost", ""), deniedBy: "resource"},
		// "receivers MUST ignore unknown fields present in request or response bodies"
		{name: "unknown members are ignored", body: `{"subject": {"type": "user", "id": "alice", "iss": "x"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}, "extra": 1}`, allow: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			r := e.do("POST", "/access/v1/evaluation", c.body, pep())
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			allow, dctx := decisionOf(t, r.JSON(t))
			if allow != c.allow {
				t.Fatalf("decision %v, want %v: %s", allow, c.allow, r.Body)
			}
			if c.allow {
				if dctx["denied_by"] != nil {
					t.Fatalf("an allow carries denied_by: %s", r.Body)
				}
				return
			}
			if got := deniedBy(dctx); !contains(got, c.deniedBy) {
				t.Fatalf("denied_by %v, want it to name %q", got, c.deniedBy)
			}
		})
	}

	t.Run("a missing and a disabled subject are answered alike", func(t *testing.T) {
		e := e.with(t)
		missing := e.do("POST", "/access/v1/evaluation", evalBody("user", "nobody", "chat", "alpha", ""), pep()).JSON(t)
		disabled := "disabled"
		if _, err := e.svc.UpdateUser(ctx, principal.Operator(), "bob", authz.UserUpdate{Status: &disabled}); err != nil {
			t.Fatal(err)
		}
		gone := e.do("POST", "/access/v1/evaluation", evalBody("user", "bob", "chat", "alpha", ""), pep()).JSON(t)
		_, mc := decisionOf(t, missing)
		_, gc := decisionOf(t, gone)
		if fmt.Sprint(mc["denied_by"], mc["reasons"]) != fmt.Sprint(gc["denied_by"], gc["reasons"]) {
			t.Fatalf("missing %v and disabled %v differ", mc, gc)
		}
	})

	t.Run("the token subject is never the token itself", func(t *testing.T) {
		e := e.with(t)
		r := e.do("POST", "/access/v1/evaluation", evalBody("agent_token", e.alphaToken, "chat", "alpha", ""), pep())
		if r.Status != 400 || r.ErrorCode() != "invalid_subject" || strings.Contains(r.Text(), e.alphaToken) {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	bad := []struct{ name, body, code, field string }{
		{"unknown subject type", evalBody("robot", "r2", "chat", "alpha", ""), "invalid_subject", "subject.type"},
		{"missing subject", `{"action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}}`, "invalid_field", "subject"},
		{"subject without id", `{"subject": {"type": "user"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}}`, "invalid_subject", "subject"},
		{"unknown resource type", `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "chat"}, "resource": {"type": "document", "id": "x"}}`, "invalid_resource", "resource.type"},
		{"trailing data", evalBody("user", "alice", "use_tools", "alpha", "") + "x", "invalid_json", ""},
		{"non-string tool", `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "use_tools"}, "resource": {"type": "agent", "id": "alpha", "properties": {"tool": 7}}}`, "invalid_tool", "resource.properties.tool"},
		{"invalid action name", evalBody("user", "alice", "Bad Action", "alpha", ""), "invalid_action", "action.name"},
		{"not JSON", `{"subject":`, "invalid_json", ""},
	}
	for _, c := range bad {
		t.Run("400 "+c.name, func(t *testing.T) {
			e := e.with(t)
			r := e.do("POST", "/access/v1/evaluation", c.body, pep())
			if r.Status != 400 || r.ErrorCode() != c.code || r.ErrorField() != c.field {
				t.Fatalf("got %d %s/%s, want 400 %s/%s: %s", r.Status, r.ErrorCode(), r.ErrorField(), c.code, c.field, r.Body)
			}
		})
	}
}

func TestAuthZENToolFromResourceProperties(t *testing.T) {
	e := newEnv(t, withPEPToken())
	ctx := context.Background()
	if _, err := e.svc.UpdateAgent(ctx, principal.Operator(), "alpha", authz.AgentUpdate{ToolPolicy: &model.ToolPolicy{Mode: "allow", Tools: []string{"web_search"}}}); err != nil {
		t.Fatal(err)
	}
	ok := e.do("POST", "/access/v1/evaluation", evalBody("agent_token", itoa(e.alphaTokenID), "use_tools", "alpha", "web_search"), pep())
	no := e.do("POST", "/access/v1/evaluation", evalBody("agent_token", itoa(e.alphaTokenID), "use_tools", "alpha", "shell"), pep())
	if d, _ := decisionOf(t, ok.JSON(t)); !d {
		t.Fatalf("web_search denied: %s", ok.Body)
	}
	d, dctx := decisionOf(t, no.JSON(t))
	if d || !contains(deniedBy(dctx), "tool_policy") {
		t.Fatalf("shell: %s", no.Body)
	}
	// the same question through POST /v1/authorize gets the same answer
	r := e.do("POST", "/v1/authorize", `{"action":"use_tools","tool":"shell"}`, bearer(e.alphaToken)).JSON(t)
	if r["allow"] != false || fmt.Sprint(r["denied_by"]) != fmt.Sprint(dctx["denied_by"]) {
		t.Fatalf("/v1/authorize %v, AuthZEN %v", r, dctx)
	}
}

func TestAuthZENEvaluations(t *testing.T) {
	e := newEnv(t, withPEPToken())
	// alice may chat on alpha; bob may not; an unknown user may not.
	const items = `[
		{"subject": {"type": "user", "id": "alice"}},
		{"subject": {"type": "user", "id": "bob"}},
		{"subject": {"type": "user", "id": "alice"}},
		{"subject": {"type": "user", "id": "nobody"}}
	]`
	batch := func(semantic string) string {
		opts := ""
		if semantic != "" {
			opts = fmt.Sprintf(`, "options": {"evaluations_semantic": %q}`, semantic)
		}
		return `{"action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}, "context": {"ip": "10.0.0.1"}, "evaluations": ` + items + opts + `}`
	}
	cases := []struct {
		name, body string
		want       []bool
	}{
		{"default is execute_all", batch(""), []bool{true, false, true, false}},
		{"execute_all", batch("execute_all"), []bool{true, false, true, false}},
		{"deny_on_first_deny stops after the first deny", batch("deny_on_first_deny"), []bool{true, false}},
		{"permit_on_first_permit stops after the first permit", batch("permit_on_first_permit"), []bool{true}},
		{"items override the defaults", `{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "agent", "id": "alpha"},
			"evaluations": [{"action": {"name": "chat"}}, {"action": {"name": "chat"}, "subject": {"type": "user", "id": "bob"}},
			{"action": {"name": "chat"}, "resource": {"type": "agent", "id": "ghost"}}]}`, []bool{true, false, false}},
		{"all members in the items", `{"evaluations": [` + evalBody("user", "alice", "chat", "alpha", "") + `,` + evalBody("audience", "public", "chat", "alpha", "") + `]}`, []bool{true, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			r := e.do("POST", "/access/v1/evaluations", c.body, pep())
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			list, _ := r.JSON(t)["evaluations"].([]any)
			var got []bool
			for _, it := range list {
				d, _ := decisionOf(t, it.(map[string]any))
				got = append(got, d)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("decisions %v, want %v: %s", got, c.want, r.Body)
			}
		})
	}

	t.Run("without evaluations it is the single evaluation", func(t *testing.T) {
		e := e.with(t)
		r := e.do("POST", "/access/v1/evaluations", evalBody("user", "alice", "chat", "alpha", ""), pep())
		if d, _ := decisionOf(t, r.JSON(t)); r.Status != 200 || !d {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	over := make([]string, httpapi.MaxAuthZENEvaluations+1)
	for i := range over {
		over[i] = `{}`
	}
	bad := []struct{ name, body, code, field string }{
		{"over the limit", `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}, "evaluations": [` + strings.Join(over, ",") + `]}`, "too_many_evaluations", "evaluations"},
		{"unknown semantic", batch("first_wins"), "invalid_field", "options.evaluations_semantic"},
		{"an item without a subject", `{"action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}, "evaluations": [{"subject": {"type": "user", "id": "alice"}}, {}]}`, "invalid_field", "evaluations[1].subject"},
		{"a malformed item is refused even past a short circuit", `{"action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}, "options": {"evaluations_semantic": "permit_on_first_permit"}, "evaluations": [{"subject": {"type": "user", "id": "alice"}}, {"subject": {"type": "robot", "id": "r2"}}]}`, "invalid_subject", "evaluations[1].subject.type"},
	}
	for _, c := range bad {
		t.Run("400 "+c.name, func(t *testing.T) {
			e := e.with(t)
			r := e.do("POST", "/access/v1/evaluations", c.body, pep())
			if r.Status != 400 || r.ErrorCode() != c.code || r.ErrorField() != c.field {
				t.Fatalf("got %d %s/%s, want 400 %s/%s: %s", r.Status, r.ErrorCode(), r.ErrorField(), c.code, c.field, r.Body)
			}
		})
	}
}

// TestAuthZENAccessLogDecisionIDs: the access log's decision_id of an
// AuthZEN call names its decisions: a batch's ids in answer order,
// comma-separated, only those decided (a short circuit stops them).
func TestAuthZENAccessLogDecisionIDs(t *testing.T) {
	e := newEnv(t, withPEPToken())
	items := `[{"subject": {"type": "user", "id": "alice"}}, {"subject": {"type": "user", "id": "nobody"}}, {"subject": {"type": "user", "id": "alice"}}]`
	batch := `{"action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}, "evaluations": ` + items
	cases := []struct {
		name, path, body string
		decisions        int
	}{
		{"one evaluation", "/access/v1/evaluation", evalBody("user", "alice", "chat", "alpha", ""), 1},
		{"a batch of three", "/access/v1/evaluations", batch + `}`, 3},
		{"a batch stopped at its first deny", "/access/v1/evaluations", batch + `, "options": {"evaluations_semantic": "deny_on_first_deny"}}`, 2},
		{"the batch endpoint without evaluations", "/access/v1/evaluations", evalBody("user", "alice", "chat", "alpha", ""), 1},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rid := fmt.Sprintf("authzen-ids-%d", i)
			r := e.with(t).do("POST", c.path, c.body, pep(), header("X-Request-Id", rid))
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			answers := []any{r.JSON(t)}
			if list, ok := answers[0].(map[string]any)["evaluations"].([]any); ok {
				answers = list
			}
			var ids []string
			for _, a := range answers {
				_, ctx := decisionOf(t, a.(map[string]any))
				ids = append(ids, ctx["decision_id"].(string))
			}
			if len(ids) != c.decisions {
				t.Fatalf("%d decisions answered, want %d", len(ids), c.decisions)
			}
			if got, want := accessDecisionID(t, e, rid), strings.Join(ids, ","); got != want {
				t.Fatalf("access log decision_id %q, want the answer's %q", got, want)
			}
		})
	}
}

// accessDecisionID waits for the access record of request rid and returns
// its decision_id.
func accessDecisionID(t *testing.T, e *env, rid string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["request_id"] == rid {
				id, _ := rec["decision_id"].(string)
				return id
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access record for request %s within 5s", rid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuthZENPEPAuthentication(t *testing.T) {
	body := evalBody("user", "alice", "chat", "alpha", "")
	secretEnv := newEnv(t, withPEPToken())
	trustedEnv := newEnv(t, withHTTPConfig(func(c *httpapi.Config) {
		c.AuthZENTrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}))
	otherNetEnv := newEnv(t, withHTTPConfig(func(c *httpapi.Config) {
		c.AuthZENPEPToken = pepSecret
		c.AuthZENTrustedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}))
	unconfigured := newEnv(t)
	cases := []struct {
		name   string
		env    *env
		opts   []reqOption
		status int
		code   string
	}{
		{"the PEP secret is accepted", secretEnv, []reqOption{pep()}, 200, ""},
		{"no credential is 401", secretEnv, nil, 401, "authentication_required"},
		{"a wrong secret is 401", secretEnv, []reqOption{bearer("not-the-secret")}, 401, "invalid_token"},
		{"an agent token is not a PEP credential", secretEnv, []reqOption{bearer(secretEnv.alphaToken)}, 401, "invalid_token"},
		{"another scheme is 401", secretEnv, []reqOption{header("Authorization", "Basic dXNlcjpwYXNz")}, 401, "invalid_token"},
		{"a trusted proxy's user header is no PEP credential", secretEnv, []reqOption{asUser("admin")}, 401, "authentication_required"},
		{"a trusted-network peer needs no secret", trustedEnv, nil, 200, ""},
		{"a wrong secret from a trusted network is still 401", trustedEnv, []reqOption{bearer("nope")}, 401, "invalid_token"},
		{"a peer outside the trusted networks needs the secret", otherNetEnv, nil, 401, "authentication_required"},
		{"...and may present it", otherNetEnv, []reqOption{pep()}, 200, ""},
		{"nothing configured: nobody may call", unconfigured, []reqOption{pep()}, 401, "invalid_token"},
	}
	for _, c := range cases {
		for _, path := range []string{"/access/v1/evaluation", "/access/v1/evaluations"} {
			t.Run(c.name+" "+path, func(t *testing.T) {
				e := c.env.with(t)
				r := e.do("POST", path, body, c.opts...)
				if r.Status != c.status || r.ErrorCode() != c.code {
					t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.ErrorCode(), c.status, c.code, r.Body)
				}
				if c.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			})
		}
	}
	if strings.Contains(secretEnv.logs.String(), pepSecret) {
		t.Fatal("the PEP secret reached the logs")
	}
}

func TestAuthZENDiscovery(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/.well-known/authzen-configuration", "")
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["policy_decision_point"] != e.url || m["access_evaluation_endpoint"] != e.url+"/access/v1/evaluation" ||
		m["access_evaluations_endpoint"] != e.url+"/access/v1/evaluations" ||
		m["search_subject_endpoint"] != e.url+"/access/v1/search/subject" ||
		m["search_resource_endpoint"] != e.url+"/access/v1/search/resource" ||
		m["search_action_endpoint"] != e.url+"/access/v1/search/action" {
		t.Fatalf("discovery %v (base %s)", m, e.url)
	}
	fixed := newEnv(t, withHTTPConfig(func(c *httpapi.Config) { c.AuthZENBaseURL = "https://pdp.example.com/" }))
	if m := fixed.do("GET", "/.well-known/authzen-configuration", "").JSON(t); m["access_evaluations_endpoint"] != "https://pdp.example.com/access/v1/evaluations" {
		t.Fatalf("discovery with a base URL %v", m)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
