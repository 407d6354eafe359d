package httpapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// searchEnv adds to the seeded world carol (a subscriber with no grant) and
// two agents of alice's: beta (bob viewer, audience:public viewer) and gamma
// (bob operator, audience:acme operator).
func searchEnv(t *testing.T) *env {
	e := newEnv(t, withPEPToken())
	ctx, op := context.Background(), principal.Operator()
	if _, err := e.svc.CreateUser(ctx, op, authz.CreateUserRequest{Login: "carol", Roles: []string{"subscriber"}}); err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{"beta", "gamma"} {
		if _, err := e.svc.CreateAgent(ctx, op, authz.CreateAgentRequest{Slug: slug, Owner: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	bob := "user:" + itoa(e.bob.ID)
	for _, g := range [][3]string{
		{"beta", bob, "viewer"}, {"beta", "audience:public", "viewer"},
		{"gamma", bob, "operator"}, {"gamma", "audience:acme", "operator"},
	} {
		if _, _, err := e.svc.PutGrant(ctx, op, g[0], g[1], g[2]); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// searchAnswer is a search response: the results' ids (or action names)
// and page.next_token.
type searchAnswer struct {
	ids  []string
	next string
}

func search(t *testing.T, e *env, path, body string) searchAnswer {
	t.Helper()
	r := e.do("POST", path, body, pep())
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	page, ok := m["page"].(map[string]any)
	if !ok {
		t.Fatalf("no page object: %s", r.Body)
	}
	next, ok := page["next_token"].(string)
	if !ok {
		t.Fatalf("no page.next_token: %s", r.Body)
	}
	results, ok := m["results"].([]any)
	if !ok {
		t.Fatalf("no results array: %s", r.Body)
	}
	if page["count"] != float64(len(results)) {
		t.Fatalf("page.count %v for %d results", page["count"], len(results))
	}
	out := searchAnswer{ids: []string{}, next: next}
	for _, it := range results {
		m := it.(map[string]any)
		if name, ok := m["name"].(string); ok {
			out.ids = append(out.ids, name)
			continue
		}
		out.ids = append(out.ids, fmt.Sprint(m["type"], ":", m["id"]))
	}
	return out
}

// searchCase is one search and its results, all on one page.
type searchCase struct {
	name, body string
	want       []string
}

func searchCases(t *testing.T, e *env, path string, cases []searchCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := search(t, e.with(t), path, c.body)
			if fmt.Sprint(got.ids) != fmt.Sprint(c.want) || got.next != "" {
				t.Fatalf("results %v next %q, want %v and no next page", got.ids, got.next, c.want)
			}
		})
	}
}

func resourceSearch(subType, subID, action string, extra string) string {
	return fmt.Sprintf(`{"subject": {"type": %q, "id": %q}, "action": {"name": %q%s}, "resource": {"type": "agent"}}`, subType, subID, action, extra)
}

func minRole(role string) string { return fmt.Sprintf(`, "properties": {"minimum_role": %q}`, role) }

func TestAuthZENSearchResource(t *testing.T) {
	e := searchEnv(t)
	cases := []searchCase{
		// the spec's "Example Resource Search API Request", in this domain
		{"the spec's example: the agents alice can access", `{"subject": {"type": "user", "id": "alice"}, "action": {"name": "can_access"}, "resource": {"type": "agent"}}`,
			[]string{"agent:alpha", "agent:beta", "agent:gamma"}},
		{"a grantee reaches what it was granted", resourceSearch("user", "bob", "can_access", ""), []string{"agent:beta", "agent:gamma"}},
		{"a minimum role narrows it", resourceSearch("user", "bob", "can_access", minRole("operator")), []string{"agent:gamma"}},
		{"an action: where the policy allows it", resourceSearch("user", "bob", "chat", ""), []string{"agent:gamma"}},
		{"a viewer action", resourceSearch("user", "bob", "read_jobs", ""), []string{"agent:beta", "agent:gamma"}},
		{"a site administrator reaches every agent", resourceSearch("user", "admin", "can_access", minRole("admin")), []string{"agent:alpha", "agent:beta", "agent:gamma"}},
		{"the public audience reaches the public agents", resourceSearch("audience", "public", "can_access", ""), []string{"agent:beta"}},
		{"the public audience may not chat anywhere", resourceSearch("audience", "public", "chat", ""), []string{}},
		{"an audience also holds the public grants", resourceSearch("audience", "acme", "can_access", ""), []string{"agent:beta", "agent:gamma"}},
		{"a token reaches its own agent", resourceSearch("agent_token", itoa(e.alphaTokenID), "can_access", ""), []string{"agent:alpha"}},
		{"an unknown user finds nothing", resourceSearch("user", "nobody", "can_access", ""), []string{}},
		{"an unknown token finds nothing", resourceSearch("agent_token", "999999", "chat", ""), []string{}},
		{"a resource id is ignored", `{"subject": {"type": "user", "id": "bob"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}}`, []string{"agent:gamma"}},
		{"unknown members are ignored", `{"subject": {"type": "user", "id": "bob", "x": 1}, "action": {"name": "chat"}, "resource": {"type": "agent"}, "later": true}`, []string{"agent:gamma"}},
	}
	searchCases(t, e, "/access/v1/search/resource", cases)
	t.Run("the PEP's X-Request-ID comes back, as the spec's HTTPS examples show", func(t *testing.T) {
		const id = "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
		r := e.with(t).do("POST", "/access/v1/search/resource", resourceSearch("user", "bob", "chat", ""), pep(), header("X-Request-ID", id))
		if r.Status != 200 || r.Header.Get("X-Request-Id") != id {
			t.Fatalf("got %d with X-Request-Id %q", r.Status, r.Header.Get("X-Request-Id"))
		}
	})
	t.Run("every result is allowed by the evaluation endpoint", func(t *testing.T) {
		e := e.with(t)
		for _, sub := range [][2]string{{"user", "bob"}, {"audience", "acme"}, {"user", "alice"}} {
			for _, id := range search(t, e, "/access/v1/search/resource", resourceSearch(sub[0], sub[1], "chat", "")).ids {
				slug := strings.TrimPrefix(id, "agent:")
				if d, _ := decisionOf(t, e.do("POST", "/access/v1/evaluation", evalBody(sub[0], sub[1], "chat", slug, ""), pep()).JSON(t)); !d {
					t.Fatalf("%v found %s but the evaluation denies it", sub, slug)
				}
			}
		}
	})
}

func TestAuthZENSearchPagination(t *testing.T) {
	e := searchEnv(t)
	cases := []struct {
		name, path, first string
		pages             [][]string
	}{
		{"resources two at a time", "/access/v1/search/resource", resourceSearch("user", "admin", "can_access", ""),
			[][]string{{"agent:alpha", "agent:beta"}, {"agent:gamma"}}},
		{"resources with an action", "/access/v1/search/resource", resourceSearch("user", "alice", "chat", ""),
			[][]string{{"agent:alpha", "agent:beta"}, {"agent:gamma"}}},
		{"subjects", "/access/v1/search/subject", `{"subject": {"type": "user"}, "action": {"name": "can_access"}, "resource": {"type": "agent", "id": "gamma"}}`,
			[][]string{{"user:admin", "user:alice"}, {"user:bob"}}},
		{"actions", "/access/v1/search/action", `{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "agent", "id": "alpha"}}`,
			[][]string{{"chat", "manage_flows"}, {"read_jobs", "read_memory"}, {"run_pipeline", "use_tools"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			token := ""
			for i, want := range c.pages {
				page := `"page": {"limit": 2}`
				if token != "" {
					page = fmt.Sprintf(`"page": {"limit": 2, "token": %q}`, token)
				}
				got := search(t, e, c.path, strings.TrimSuffix(c.first, "}")+", "+page+"}")
				if fmt.Sprint(got.ids) != fmt.Sprint(want) {
					t.Fatalf("page %d: %v, want %v", i, got.ids, want)
				}
				last := i == len(c.pages)-1
				if last != (got.next == "") {
					t.Fatalf("page %d: next_token %q (last page: %v)", i, got.next, last)
				}
				token = got.next
			}
		})
	}
}

func TestAuthZENSearchSubject(t *testing.T) {
	e := searchEnv(t)
	body := func(subType, action, agent string) string {
		return fmt.Sprintf(`{"subject": {"type": %q}, "action": {"name": %q}, "resource": {"type": "agent", "id": %q}}`, subType, action, agent)
	}
	cases := []searchCase{
		// the spec's "Example Subject Search API Request", in this domain
		{"the spec's example: the users who may chat on gamma", `{"subject": {"type": "user"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "gamma"}, "context": {"time": "2024-10-26T01:22-07:00"}}`,
			[]string{"user:admin", "user:alice", "user:bob"}},
		{"owner, site administrator, a viewer grantee and, through the public grant, everyone hold a role", body("user", "can_access", "beta"),
			[]string{"user:admin", "user:alice", "user:bob", "user:carol"}},
		{"a user without a grant holds no role on a private agent", body("user", "can_access", "gamma"), []string{"user:admin", "user:alice", "user:bob"}},
		{"a viewer grantee may not chat", body("user", "chat", "beta"), []string{"user:admin", "user:alice"}},
		{"at least admin", `{"subject": {"type": "user"}, "action": {"name": "can_access", "properties": {"minimum_role": "admin"}}, "resource": {"type": "agent", "id": "gamma"}}`,
			[]string{"user:admin", "user:alice"}},
		{"audiences that may chat", body("audience", "chat", "gamma"), []string{"audience:audience:acme"}},
		{"the public audience where it holds a grant", body("audience", "can_access", "beta"), []string{"audience:audience:public"}},
		{"no audience on a private agent", body("audience", "can_access", "alpha"), []string{}},
		{"a subject id is ignored", `{"subject": {"type": "user", "id": "bob"}, "action": {"name": "manage_flows"}, "resource": {"type": "agent", "id": "beta"}}`, []string{"user:admin", "user:alice"}},
		{"an unknown agent finds nothing", body("user", "can_access", "ghost"), []string{}},
		{"an agent by id", body("user", "chat", itoa(e.alpha.ID)), []string{"user:admin", "user:alice"}},
	}
	searchCases(t, e, "/access/v1/search/subject", cases)
	t.Run("a disabled user is never found", func(t *testing.T) {
		e := searchEnv(t)
		disabled := "disabled"
		if _, err := e.svc.UpdateUser(context.Background(), principal.Operator(), "bob", authz.UserUpdate{Status: &disabled}); err != nil {
			t.Fatal(err)
		}
		if got := search(t, e, "/access/v1/search/subject", body("user", "can_access", "gamma")); fmt.Sprint(got.ids) != "[user:admin user:alice]" {
			t.Fatalf("got %v", got.ids)
		}
	})
}

func TestAuthZENSearchAction(t *testing.T) {
	e := searchEnv(t)
	body := func(subType, subID, agent string) string {
		return fmt.Sprintf(`{"subject": {"type": %q, "id": %q}, "resource": {"type": "agent", "id": %q}}`, subType, subID, agent)
	}
	all := []string{"chat", "manage_flows", "read_jobs", "read_memory", "run_pipeline", "use_tools"}
	cases := []searchCase{
		// the spec's "Example Action Search API Request", in this domain
		{"the spec's example: what alice may do on alpha", `{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "agent", "id": "alpha"}, "context": {"time": "2024-10-26T01:22-07:00"}}`, all},
		{"a viewer may read", body("user", "bob", "beta"), []string{"read_jobs", "read_memory"}},
		{"an operator may run but not manage", body("user", "bob", "gamma"), []string{"chat", "read_jobs", "read_memory", "run_pipeline", "use_tools"}},
		{"the public audience on a public agent", body("audience", "public", "beta"), []string{"read_jobs", "read_memory"}},
		{"nothing without a role", body("audience", "public", "alpha"), []string{}},
		{"a token within its agent", body("agent_token", itoa(e.alphaTokenID), "alpha"), all},
		{"a token on another agent", body("agent_token", itoa(e.alphaTokenID), "beta"), []string{}},
		{"an unknown agent finds nothing", body("user", "alice", "ghost"), []string{}},
		{"an unknown subject finds nothing", body("user", "nobody", "alpha"), []string{}},
		{"an action member is ignored", `{"subject": {"type": "user", "id": "bob"}, "action": {"name": "chat", "properties": {"minimum_role": 7}}, "resource": {"type": "agent", "id": "beta"}}`, []string{"read_jobs", "read_memory"}},
	}
	searchCases(t, e, "/access/v1/search/action", cases)
}

func TestAuthZENSearchBadInput(t *testing.T) {
	e := searchEnv(t)
	paged := func(body, page string) string { return strings.TrimSuffix(body, "}") + `, "page": ` + page + `}` }
	res := resourceSearch("user", "admin", "can_access", "")
	tok := search(t, e, "/access/v1/search/resource", paged(res, `{"limit": 1}`)).next
	actionTok := search(t, e, "/access/v1/search/action", paged(`{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "agent", "id": "alpha"}}`, `{"limit": 1}`)).next
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"a": "1", "q": "0000"}`))
	const (
		resource = "/access/v1/search/resource"
		subject  = "/access/v1/search/subject"
		action   = "/access/v1/search/action"
	)
	cases := []struct{ name, path, body, code, field string }{
		{"not JSON", resource, `{"subject":`, "invalid_json", ""},
		{"not an object", resource, `[1]`, "invalid_json", ""},
		{"duplicate keys", resource, `{"subject": {"type": "user", "id": "a", "id": "b"}, "action": {"name": "chat"}, "resource": {"type": "agent"}}`, "invalid_json", "subject.id"},
		{"no subject", resource, `{"action": {"name": "chat"}, "resource": {"type": "agent"}}`, "invalid_field", "subject"},
		{"a subject without id", resource, `{"subject": {"type": "user"}, "action": {"name": "chat"}, "resource": {"type": "agent"}}`, "invalid_subject", "subject.id"},
		{"an unknown subject type", resource, resourceSearch("robot", "r2", "chat", ""), "invalid_subject", "subject.type"},
		{"the token itself as subject", resource, resourceSearch("agent_token", "datamachine_abc", "chat", ""), "invalid_subject", "subject.id"},
		{"no action", resource, `{"subject": {"type": "user", "id": "bob"}, "resource": {"type": "agent"}}`, "invalid_field", "action"},
		{"an invalid action", resource, resourceSearch("user", "bob", "Bad Action", ""), "invalid_action", "action.name"},
		{"an unknown resource type", resource, `{"subject": {"type": "user", "id": "bob"}, "action": {"name": "chat"}, "resource": {"type": "document"}}`, "invalid_resource", "resource.type"},
		{"an unknown minimum role", resource, resourceSearch("user", "bob", "can_access", minRole("owner")), "invalid_role", "action.properties.minimum_role"},
		{"a minimum role that is not a string", resource, resourceSearch("user", "bob", "can_access", `, "properties": {"minimum_role": 3}`), "invalid_minimum_role", "action.properties.minimum_role"},
		{"a minimum role with a runtime action", resource, resourceSearch("user", "bob", "chat", minRole("viewer")), "invalid_minimum_role", "action.properties.minimum_role"},
		{"a page over the limit", resource, paged(res, fmt.Sprintf(`{"limit": %d}`, 1001)), "invalid_page_limit", "page.limit"},
		{"a negative page limit", resource, paged(res, `{"limit": -1}`), "invalid_page_limit", "page.limit"},
		{"a fractional page limit", resource, paged(res, `{"limit": 1.5}`), "invalid_field", "page.limit"},
		{"a garbage page token", resource, paged(res, `{"token": "!!not base64!!"}`), "invalid_page_token", "page.token"},
		{"a page token of another shape", resource, paged(res, fmt.Sprintf(`{"token": %q}`, base64.RawURLEncoding.EncodeToString([]byte(`[1,2]`)))), "invalid_page_token", "page.token"},
		{"a forged page token", resource, paged(res, fmt.Sprintf(`{"token": %q}`, forged)), "invalid_page_token", "page.token"},
		{"a huge page token", resource, paged(res, fmt.Sprintf(`{"token": %q}`, strings.Repeat("A", 4096))), "invalid_page_token", "page.token"},
		{"a page token of another search", resource, paged(res, fmt.Sprintf(`{"limit": 1, "token": %q}`, actionTok)), "invalid_page_token", "page.token"},
		{"a page token with a changed limit", resource, paged(res, fmt.Sprintf(`{"limit": 2, "token": %q}`, tok)), "invalid_page_token", "page.token"},
		{"a page token with a changed subject", resource, paged(resourceSearch("user", "bob", "can_access", ""), fmt.Sprintf(`{"limit": 1, "token": %q}`, tok)), "invalid_page_token", "page.token"},
		{"subject search: an agent token type", subject, `{"subject": {"type": "agent_token"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}}`, "invalid_subject", "subject.type"},
		{"subject search: no subject type", subject, `{"subject": {}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "alpha"}}`, "invalid_subject", "subject.type"},
		{"subject search: no resource id", subject, `{"subject": {"type": "user"}, "action": {"name": "chat"}, "resource": {"type": "agent"}}`, "invalid_resource", "resource.id"},
		{"subject search: a bad resource id", subject, `{"subject": {"type": "user"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "../x"}}`, "invalid_agent", "resource.id"},
		{"action search: no resource", action, `{"subject": {"type": "user", "id": "alice"}}`, "invalid_field", "resource"},
		{"action search: an unknown subject type", action, `{"subject": {"type": "group", "id": "g"}, "resource": {"type": "agent", "id": "alpha"}}`, "invalid_subject", "subject.type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.with(t).do("POST", c.path, c.body, pep())
			if r.Status != 400 || r.ErrorCode() != c.code || r.ErrorField() != c.field {
				t.Fatalf("got %d %s/%s, want 400 %s/%s: %s", r.Status, r.ErrorCode(), r.ErrorField(), c.code, c.field, r.Body)
			}
		})
	}
	for _, path := range []string{resource, subject, action} {
		t.Run("401 without the PEP credential "+path, func(t *testing.T) {
			r := e.with(t).do("POST", path, res)
			if r.Status != 401 || r.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("got %d: %s", r.Status, r.Body)
			}
		})
	}
}

// A store that cannot answer is 503 for every search, never an empty
// (or a partial) result.
func TestAuthZENSearchFailsClosed(t *testing.T) {
	e := searchEnv(t)
	_ = e.st.Close()
	for _, c := range []struct{ path, body string }{
		{"/access/v1/search/resource", resourceSearch("user", "bob", "can_access", "")},
		{"/access/v1/search/resource", resourceSearch("audience", "public", "chat", "")},
		{"/access/v1/search/subject", `{"subject": {"type": "user"}, "action": {"name": "chat"}, "resource": {"type": "agent", "id": "gamma"}}`},
		{"/access/v1/search/action", `{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "agent", "id": "alpha"}}`},
	} {
		if r := e.do("POST", c.path, c.body, pep()); r.Status != 503 {
			t.Errorf("%s %s with the store closed: %d %s", c.path, c.body, r.Status, r.Body)
		}
	}
}
