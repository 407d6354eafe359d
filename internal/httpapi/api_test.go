package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/httpapi"
)

func TestTokenLifecycle(t *testing.T) {
	e := newEnv(t)

	res := e.do("POST", "/v1/agents/alpha/tokens", `{"label":"kimaki-prod","capabilities":["datamachine_chat"],"expires_in":7776000}`,
		asUser("admin"), contentType("application/json; charset=utf-8"))
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	created := res.JSON(t)
	raw, _ := created["token"].(string)
	if !strings.HasPrefix(raw, "datamachine_alpha_") {
		t.Errorf("token = %q, want datamachine_alpha_...", raw)
	}
	if created["warning"] != "Save this token now: it cannot be shown again." {
		t.Errorf("warning = %v", created["warning"])
	}
	if created["label"] != "kimaki-prod" || created["expires_at"] == nil || created["revoked_at"] != nil {
		t.Errorf("metadata: %s", res.Body)
	}
	id := int64(created["token_id"].(float64))

	res = e.do("GET", "/v1/agents/alpha/tokens", "", asUser("admin"))
	if res.Status != 200 {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	if strings.Contains(res.Text(), raw) || strings.Contains(res.Text(), `"token"`) || strings.Contains(res.Text(), "hash") {
		t.Errorf("listing reveals a secret: %s", res.Body)
	}
	var list struct {
		Tokens []map[string]any `json:"tokens"`
	}
	_ = json.Unmarshal(res.Body, &list)
	if len(list.Tokens) != 2 {
		t.Fatalf("tokens = %d, want 2 (seed + new)", len(list.Tokens))
	}

	res = e.do("GET", "/v1/whoami", "", bearer(raw))
	if res.Status != 200 {
		t.Fatalf("whoami with the new token: %d %s", res.Status, res.Body)
	}
	who := res.JSON(t)
	if who["agent"].(map[string]any)["agent_slug"] != "alpha" || who["user"].(map[string]any)["login"] != "alice" {
		t.Errorf("whoami: %s", res.Body)
	}
	if tok := who["token"].(map[string]any); int64(tok["token_id"].(float64)) != id {
		t.Errorf("whoami token: %v", tok)
	}

	res = e.do("DELETE", "/v1/agents/alpha/tokens/"+itoa(id), "", asUser("admin"))
	if res.Status != 200 || res.JSON(t)["revoked_at"] == nil {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	if res := e.do("GET", "/v1/whoami", "", bearer(raw)); res.Status != 401 {
		t.Fatalf("revoked token still works: %d", res.Status)
	}
}

func TestCapabilitiesNullMeansOwnerCeilingAndEmptyMeansNothing(t *testing.T) {
	e := newEnv(t)
	res := e.do("POST", "/v1/agents/alpha/tokens", `{"capabilities":null}`, asUser("admin"))
	if res.Status != 201 || res.JSON(t)["capabilities"] != nil {
		t.Fatalf("null capabilities: %d %s", res.Status, res.Body)
	}
	res = e.do("POST", "/v1/agents/alpha/tokens", `{"capabilities":[]}`, asUser("admin"))
	if res.Status != 201 || !strings.Contains(res.Text(), `"capabilities":[]`) {
		t.Fatalf("empty capabilities: %d %s", res.Status, res.Body)
	}
}

func TestAgentLifecycle(t *testing.T) {
	e := newEnv(t)
	res := e.do("POST", "/v1/agents", `{"slug":"beta","name":"Beta","owner":"alice","tool_policy":{"mode":"allow","tools":["web_search"]}}`, asUser("admin"))
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	a := res.JSON(t)
	if a["agent_slug"] != "beta" || a["agent_name"] != "Beta" || int64(a["owner_id"].(float64)) != e.alice.ID {
		t.Errorf("created: %s", res.Body)
	}

	res = e.do("GET", "/v1/agents/beta", "", asUser("alice"))
	if res.Status != 200 || res.JSON(t)["role"] == nil {
		t.Fatalf("show as owner: %d %s", res.Status, res.Body)
	}
	res = e.do("GET", "/v1/agents/"+itoa(int64(a["agent_id"].(float64))), "", asUser("admin"))
	if res.Status != 200 || res.JSON(t)["agent_slug"] != "beta" {
		t.Fatalf("show by id: %d %s", res.Status, res.Body)
	}

	res = e.do("PATCH", "/v1/agents/beta", `{"name":"Beta 2"}`, asUser("admin"))
	if res.Status != 200 || res.JSON(t)["tool_policy"] == nil {
		t.Fatalf("rename keeps the tool policy: %d %s", res.Status, res.Body)
	}
	res = e.do("PATCH", "/v1/agents/beta", `{"tool_policy":null}`, asUser("admin"))
	if res.Status != 200 || res.JSON(t)["tool_policy"] != nil {
		t.Fatalf("null clears the tool policy: %d %s", res.Status, res.Body)
	}
	res = e.do("PATCH", "/v1/agents/beta", `{"tool_policy":{"mode":"deny","tools":[]}}`, asUser("admin"))
	if res.Status != 200 || res.JSON(t)["tool_policy"].(map[string]any)["mode"] != "deny" {
		t.Fatalf("set tool policy: %d %s", res.Status, res.Body)
	}

	res = e.do("DELETE", "/v1/agents/beta", "", asUser("admin"))
	if res.Status != 204 || len(res.Body) != 0 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if res := e.do("GET", "/v1/agents/beta", "", asUser("admin")); res.Status != 404 || res.ErrorCode() != "agent_not_found" {
		t.Fatalf("after delete: %d %s", res.Status, res.Body)
	}
}

func TestListAccessibleAgentsPages(t *testing.T) {
	e := newEnv(t)
	for _, slug := range []string{"b1", "b2", "b3"} {
		if r := e.do("POST", "/v1/agents", `{"slug":"`+slug+`","owner":"alice"}`, asUser("admin")); r.Status != 201 {
			t.Fatalf("create %s: %d %s", slug, r.Status, r.Body)
		}
	}
	var seen []string
	after := ""
	for page := 0; page < 10; page++ {
		path := "/v1/agents?limit=2&minimum_role=viewer"
		if after != "" {
			path += "&after=" + after
		}
		res := e.do("GET", path, "", asUser("alice"))
		if res.Status != 200 {
			t.Fatalf("list: %d %s", res.Status, res.Body)
		}
		var body struct {
			Agents []struct {
				Slug string `json:"agent_slug"`
				Role string `json:"role"`
			} `json:"agents"`
			NextAfter *int64 `json:"next_after"`
		}
		_ = json.Unmarshal(res.Body, &body)
		for _, a := range body.Agents {
			if a.Role == "" {
				t.Errorf("agent %s lacks the caller's role", a.Slug)
			}
			seen = append(seen, a.Slug)
		}
		if body.NextAfter == nil {
			break
		}
		after = itoa(*body.NextAfter)
	}
	if strings.Join(seen, ",") != "alpha,b1,b2,b3" {
		t.Errorf("alice's agents = %v", seen)
	}
	res := e.do("GET", "/v1/agents", "", asUser("bob"))
	if res.Status != 200 || !strings.Contains(res.Text(), `"agents":[]`) || !strings.Contains(res.Text(), `"next_after":null`) {
		t.Errorf("bob sees: %d %s", res.Status, res.Body)
	}
}

func TestAccessCheckAnswersDenialWith200(t *testing.T) {
	e := newEnv(t)
	res := e.do("GET", "/v1/agents/alpha/access?minimum_role=operator", "", asUser("bob"))
	if res.Status != 200 {
		t.Fatalf("bob: %d %s", res.Status, res.Body)
	}
	if m := res.JSON(t); m["allowed"] != false || m["role"] != nil || m["minimum_role"] != "operator" {
		t.Errorf("bob: %s", res.Body)
	}
	res = e.do("GET", "/v1/agents/alpha/access", "", asUser("alice"))
	if m := res.JSON(t); res.Status != 200 || m["allowed"] != true || m["role"] == nil || m["minimum_role"] != nil {
		t.Errorf("alice: %d %s", res.Status, res.Body)
	}
}

func TestGrantLifecycle(t *testing.T) {
	e := newEnv(t)
	res := e.do("PUT", "/v1/agents/alpha/grants/user%3Abob", `{"role":"viewer"}`, asUser("admin"))
	if res.Status != 201 {
		t.Fatalf("grant: %d %s", res.Status, res.Body)
	}
	if p := res.JSON(t)["principal"]; p != "user:"+itoa(e.bob.ID) {
		t.Errorf("principal stored as %v", p)
	}
	res = e.do("PUT", "/v1/agents/alpha/grants/user%3A"+itoa(e.bob.ID), `{"role":"operator"}`, asUser("admin"))
	if res.Status != 200 || res.JSON(t)["role"] != "operator" {
		t.Fatalf("replace: %d %s", res.Status, res.Body)
	}
	if r := e.do("PUT", "/v1/agents/alpha/grants/audience%3Aacme", `{"role":"viewer"}`, asUser("admin")); r.Status != 201 {
		t.Fatalf("audience grant: %d %s", r.Status, r.Body)
	}
	res = e.do("GET", "/v1/agents/alpha/grants", "", asUser("admin"))
	if res.Status != 200 {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	var body struct {
		Grants []struct {
			Principal string `json:"principal"`
			Role      string `json:"role"`
			Implicit  bool   `json:"implicit"`
		} `json:"grants"`
	}
	_ = json.Unmarshal(res.Body, &body)
	if len(body.Grants) != 3 || !body.Grants[0].Implicit || body.Grants[0].Principal != "user:"+itoa(e.alice.ID) {
		t.Errorf("grants: %s", res.Body)
	}
	// bob, now an operator, may list tokens but not create them.
	if r := e.do("GET", "/v1/agents/alpha/tokens", "", asUser("bob")); r.Status != 200 {
		t.Errorf("operator lists tokens: %d %s", r.Status, r.Body)
	}
	if r := e.do("DELETE", "/v1/agents/alpha/grants/user%3Abob", "", asUser("admin")); r.Status != 204 {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/v1/agents/alpha/tokens", "", asUser("bob")); r.Status != 403 {
		t.Errorf("after removal bob lists tokens: %d %s", r.Status, r.Body)
	}
}

func TestUserLifecycle(t *testing.T) {
	e := newEnv(t)
	res := e.do("POST", "/v1/users", `{"login":"carol","name":"Carol","roles":["author"]}`, asUser("admin"))
	if res.Status != 201 || res.JSON(t)["login"] != "carol" {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	res = e.do("GET", "/v1/users", "", asUser("admin"))
	if res.Status != 200 || !strings.Contains(res.Text(), `"login":"carol"`) {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	res = e.do("PATCH", "/v1/users/carol", `{"roles":["editor"],"status":"disabled"}`, asUser("admin"))
	if m := res.JSON(t); res.Status != 200 || m["status"] != "disabled" {
		t.Fatalf("update: %d %s", res.Status, res.Body)
	}
}

// TestPolicyDenials: a denial of an ability is 403 with the layers that
// denied, or 401 for an anonymous caller; nothing changes.
func TestPolicyDenials(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, method, path, body string
		opts                     []reqOption
		status                   int
		code                     string
	}{
		{name: "a user without a role on the agent cannot create tokens", method: "POST", path: "/v1/agents/alpha/tokens", body: `{}`, opts: []reqOption{asUser("bob")}, status: 403, code: "forbidden"},
		{name: "a user without a role on the agent cannot list tokens", method: "GET", path: "/v1/agents/alpha/tokens", opts: []reqOption{asUser("bob")}, status: 403, code: "forbidden"},
		{name: "a user without a role on the agent cannot revoke tokens", method: "DELETE", path: "/v1/agents/alpha/tokens/1", opts: []reqOption{asUser("bob")}, status: 403, code: "forbidden"},
		{name: "a subscriber cannot create users", method: "POST", path: "/v1/users", body: `{"login":"carol","roles":["editor"]}`, opts: []reqOption{asUser("bob")}, status: 403, code: "forbidden"},
		{name: "an anonymous caller must authenticate to create tokens", method: "POST", path: "/v1/agents/alpha/tokens", body: `{}`, status: 401, code: "authentication_required"},
		{name: "an anonymous caller must authenticate to list users", method: "GET", path: "/v1/users", status: 401, code: "authentication_required"},
		{name: "an anonymous caller must authenticate to delete agents", method: "DELETE", path: "/v1/agents/alpha", status: 401, code: "authentication_required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			before := e.snapshot()
			res := e.do(c.method, c.path, c.body, c.opts...)
			if res.Status != c.status || res.ErrorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Body, c.status, c.code)
			}
			switch c.status {
			case 403:
				var b struct {
					Error struct {
						DeniedBy []string `json:"denied_by"`
					} `json:"error"`
				}
				_ = json.Unmarshal(res.Body, &b)
				if len(b.Error.DeniedBy) == 0 {
					t.Errorf("403 without denied_by: %s", res.Body)
				}
			case 401:
				if res.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
				}
			}
			if after := e.snapshot(); after != before {
				t.Errorf("the store changed")
			}
		})
	}
}

func TestWhoami(t *testing.T) {
	e := newEnv(t)
	res := e.do("GET", "/v1/whoami", "", asUser("alice"), header("X-Forwarded-Audience", "acme, beta"))
	if res.Status != 200 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	m := res.JSON(t)
	if m["agent"] != nil || m["token"] != nil || m["user"].(map[string]any)["login"] != "alice" {
		t.Errorf("user whoami: %s", res.Body)
	}
	if !strings.Contains(res.Text(), `"audiences":["audience:acme","audience:beta"]`) {
		t.Errorf("audiences: %s", res.Body)
	}
	res = e.do("GET", "/v1/whoami", "")
	if m := res.JSON(t); res.Status != 200 || m["user"] != nil || m["principal"].(map[string]any)["id"] != "audience:public" {
		t.Errorf("anonymous whoami: %d %s", res.Status, res.Body)
	}
}

func TestAuthorizeAnswersDenialWith200(t *testing.T) {
	e := newEnv(t)
	res := e.do("POST", "/v1/authorize", `{"action":"chat"}`, bearer(e.alphaToken))
	if res.Status != 200 {
		t.Fatalf("token authorize: %d %s", res.Status, res.Body)
	}
	m := res.JSON(t)
	if int64(m["agent_id"].(float64)) != e.alpha.ID || m["decision_id"] == "" {
		t.Errorf("token authorize: %s", res.Body)
	}
	res = e.do("POST", "/v1/authorize", `{"action":"use_tools","tool":"web_search","agent":"alpha"}`, asUser("bob"))
	if res.Status != 200 {
		t.Fatalf("bob authorize: %d %s", res.Status, res.Body)
	}
	if m := res.JSON(t); m["allow"] != false || len(m["denied_by"].([]any)) == 0 {
		t.Errorf("bob is allowed: %s", res.Body)
	}
	res = e.do("POST", "/v1/authorize", `{"action":"no_such_action","agent":"alpha"}`, asUser("alice"))
	if m := res.JSON(t); res.Status != 200 || m["allow"] != false {
		t.Errorf("unknown action: %d %s", res.Status, res.Body)
	}
}

func TestHealthReadinessAndDocument(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", ""); r.Status != 200 || r.JSON(t)["status"] != "ok" {
		t.Errorf("healthz: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/readyz", ""); r.Status != 200 {
		t.Errorf("readyz: %d %s", r.Status, r.Body)
	}
	r := e.do("GET", "/v1/openapi.json", "", bearer(corrupt(e.alphaToken)))
	if r.Status != 200 || string(r.Body) != string(httpapi.OpenAPI) {
		t.Errorf("openapi.json: %d", r.Status)
	}
	_ = e.st.Close()
	r = e.do("GET", "/readyz", "")
	if m := r.JSON(t); r.Status != 503 || m["status"] != "unavailable" || m["checks"] == nil {
		t.Errorf("readyz with the store closed: %d %s", r.Status, r.Body)
	}
}

func TestRequestIDAndAccessLog(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/agents/alpha", "", bearer(e.alphaToken), header("X-Request-Id", "trace-123"))
	if r.Header.Get("X-Request-Id") != "trace-123" {
		t.Errorf("request id not echoed: %q", r.Header.Get("X-Request-Id"))
	}
	r = e.do("GET", "/healthz", "", header("X-Request-Id", "bad id!"))
	if id := r.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("minted request id = %q", id)
	}
	var found bool
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(line, `"request_id":"trace-123"`) {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line: %v", err)
		}
		if rec["msg"] == "request" {
			found = true
			if rec["route"] != "/v1/agents/:agent" || rec["method"] != "GET" || rec["principal"] != "token:"+itoa(e.alphaTokenID) || rec["status"] == nil || rec["latency"] == nil {
				t.Errorf("access record: %s", line)
			}
		}
	}
	if !found {
		t.Errorf("no access record for the request")
	}
}

func TestRequestDeadlineFailsClosed(t *testing.T) {
	e := newEnv(t, withHTTPConfig(func(c *httpapi.Config) { c.RequestTimeout = time.Nanosecond }))
	r := e.do("GET", "/v1/agents/alpha/tokens", "", asUser("admin"))
	if r.Status != 503 {
		t.Errorf("expired deadline: %d %s, want 503", r.Status, r.Body)
	}
}

func TestStartAndGracefulShutdown(t *testing.T) {
	srv := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0"}, httpapi.Deps{})
	done := make(chan error, 1)
	go func() { done <- srv.Start() }()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Echo().ListenerAddr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := http.Get("http://" + srv.Echo().ListenerAddr().String() + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, res)
	}
	res.Body.Close()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Start after graceful shutdown = %v, want nil", err)
	}
}
