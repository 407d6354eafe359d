package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/principal"
)

// nginx and traefik set the original request the way each gateway does.
func nginx(method, uri string) reqOption {
	return func(r *http.Request) {
		r.Header.Set("X-Original-Method", method)
		r.Header.Set("X-Original-URI", uri)
	}
}

func traefik(method, uri string) reqOption {
	return func(r *http.Request) {
		r.Header.Set("X-Forwarded-Method", method)
		r.Header.Set("X-Forwarded-Uri", uri)
	}
}

func addHeader(k, v string) reqOption { return func(r *http.Request) { r.Header.Add(k, v) } }

// TestForwardAuth drives /v1/forward-auth over real HTTP: 200 (with the
// upstream headers) only when a route of the default bundle's table matched
// and the runtime decision allowed; every other answer is 4xx, never 200.
func TestForwardAuth(t *testing.T) {
	e := newEnv(t)
	ctx, op := context.Background(), principal.Operator()
	chatOnly := e.mintToken("alpha", authz.CreateTokenRequest{Label: "chat-only", Capabilities: &[]string{"datamachine_chat", "read"}})
	revoked := e.mintToken("alpha", authz.CreateTokenRequest{Label: "to-revoke"})
	if _, err := e.svc.RevokeToken(ctx, op, "alpha", revoked.Token.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	tok := bearer(e.alphaToken)

	type tc struct {
		name     string
		method   string // of the call to agentauthz
		path     string
		opts     []reqOption
		status   int
		code     string   // error code, when not 200
		deniedBy []string // when 403 by the policy
		agent    string   // X-Agentauthz-Agent when 200
		tool     string   // X-Agentauthz-Tool when 200
	}
	cases := []tc{
		// allowed
		{name: "nginx token chat", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat")}, status: 200, agent: "alpha"},
		{name: "traefik token chat with query", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, traefik("POST", "/agents/alpha/chat?stream=1")}, status: 200, agent: "alpha"},
		{name: "both header pairs agree", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat"), traefik("POST", "/agents/alpha/chat")}, status: 200, agent: "alpha"},
		{name: "tool from path", method: "POST", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/tools/web_search")}, status: 200, agent: "alpha", tool: "web_search"},
		{name: "tool from header", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/tools"), header("X-Tool", "calculator")}, status: 200, agent: "alpha", tool: "calculator"},
		{name: "percent-decoded agent", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/%61lpha/chat")}, status: 200, agent: "alpha"},
		{name: "token on its own agent", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/chat")}, status: 200, agent: "alpha"},
		{name: "owner through trusted proxy", method: "GET", path: "/v1/forward-auth", opts: []reqOption{asUser("alice"), nginx("PUT", "/agents/alpha/flows/nightly")}, status: 200, agent: "alpha"},
		{name: "head request", method: "HEAD", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("GET", "/agents/alpha/jobs")}, status: 200, agent: "alpha"},
		{name: "envoy", method: "POST", path: "/v1/forward-auth/envoy/agents/alpha/tools/web_search", opts: []reqOption{tok}, status: 200, agent: "alpha", tool: "web_search"},
		{name: "envoy with query", method: "GET", path: "/v1/forward-auth/envoy/agents/alpha/memory?since=1", opts: []reqOption{tok}, status: 200, agent: "alpha"},

		// denied by the policy
		{name: "stranger", method: "GET", path: "/v1/forward-auth", opts: []reqOption{asUser("bob"), nginx("POST", "/agents/alpha/chat")}, status: 403, code: "forbidden", deniedBy: []string{"agent_role"}},
		{name: "token ceiling", method: "GET", path: "/v1/forward-auth", opts: []reqOption{bearer(chatOnly.Raw), nginx("POST", "/agents/alpha/tools/web_search")}, status: 403, code: "forbidden", deniedBy: []string{"token_ceiling"}},
		{name: "envoy stranger", method: "POST", path: "/v1/forward-auth/envoy/agents/alpha/chat", opts: []reqOption{asUser("bob")}, status: 403, code: "forbidden", deniedBy: []string{"agent_role"}},

		// no route
		{name: "method outside the table", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("PROPFIND", "/agents/alpha/chat")}, status: 403, code: "no_route", deniedBy: []string{"no_route"}},
		{name: "wrong method for the path", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("GET", "/agents/alpha/chat")}, status: 403, code: "no_route"},
		{name: "unknown path", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/admin")}, status: 403, code: "no_route"},
		{name: "root", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("GET", "/")}, status: 403, code: "no_route"},
		{name: "longer path", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat/more")}, status: 403, code: "no_route"},
		{name: "tool header missing", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/tools")}, status: 403, code: "no_route"},
		{name: "envoy no route", method: "DELETE", path: "/v1/forward-auth/envoy/agents/alpha", opts: []reqOption{tok}, status: 403, code: "no_route"},
		{name: "agent by id", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/"+itoa(e.alpha.ID)+"/chat")}, status: 200, agent: "alpha"},
		{name: "agent id out of range", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/99999999999999999999999/chat")}, status: 403, code: "agent_not_found"},
		{name: "malformed agent", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/Al%20pha/chat")}, status: 400, code: "invalid_agent"},
		{name: "unknown agent", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/nosuch/chat")}, status: 403, code: "agent_not_found"},

		// bad input: never 200
		{name: "no original request", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok}, status: 400, code: "invalid_original_request"},
		{name: "uri without method", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, header("X-Original-URI", "/agents/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "method without uri", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, header("X-Forwarded-Method", "POST")}, status: 400, code: "invalid_original_request"},
		{name: "conflicting pairs", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat"), traefik("POST", "/agents/beta/chat")}, status: 400, code: "invalid_original_request"},
		{name: "conflicting methods", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat"), traefik("GET", "/agents/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "uri twice", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat"), addHeader("X-Original-URI", "/agents/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "absolute url", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "http://evil.example/agents/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "scheme-relative url", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "//evil.example/agents/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "relative path", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "agents/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "dot dot", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/beta/../alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "encoded dot dot", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/x/%2e%2E/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "dot", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/./alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "encoded slash", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha%2Fchat/chat")}, status: 400, code: "invalid_original_request"},
		{name: "encoded slash lower case", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha%2fx/chat")}, status: 400, code: "invalid_original_request"},
		{name: "double encoded slash", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha%252Fx/chat")}, status: 400, code: "invalid_original_request"},
		{name: "encoded backslash", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha%5Cx/chat")}, status: 400, code: "invalid_original_request"},
		{name: "empty segment", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents//chat")}, status: 400, code: "invalid_original_request"},
		{name: "trailing slash", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat/")}, status: 400, code: "invalid_original_request"},
		{name: "bad escape", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/al%zzpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "encoded control character", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha%00/chat")}, status: 400, code: "invalid_original_request"},
		{name: "lower-case method", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("post", "/agents/alpha/chat")}, status: 400, code: "invalid_original_request"},
		{name: "tool header twice", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/tools"), addHeader("X-Tool", "calculator"), addHeader("X-Tool", "shell")}, status: 400, code: "invalid_header"},
		{name: "malformed tool", method: "GET", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/tools"), header("X-Tool", "rm -rf")}, status: 400, code: "invalid_tool"},
		{name: "envoy conflicting header", method: "POST", path: "/v1/forward-auth/envoy/agents/alpha/chat", opts: []reqOption{tok, traefik("POST", "/agents/beta/chat")}, status: 400, code: "invalid_original_request"},
		{name: "envoy encoded slash", method: "POST", path: "/v1/forward-auth/envoy/agents/alpha%2Fchat", opts: []reqOption{tok}, status: 400, code: "invalid_original_request"},
		{name: "envoy dot dot", method: "POST", path: "/v1/forward-auth/envoy/agents/beta/%2e%2e/alpha/chat", opts: []reqOption{tok}, status: 400, code: "invalid_original_request"},

		// credentials
		{name: "revoked token", method: "GET", path: "/v1/forward-auth", opts: []reqOption{bearer(revoked.Raw), nginx("POST", "/agents/alpha/chat")}, status: 401, code: "invalid_token"},
		{name: "garbage token", method: "GET", path: "/v1/forward-auth", opts: []reqOption{bearer("datamachine_alpha_nope"), nginx("POST", "/agents/alpha/chat")}, status: 401, code: "invalid_token"},
		{name: "anonymous denied", method: "GET", path: "/v1/forward-auth", opts: []reqOption{nginx("POST", "/agents/alpha/chat")}, status: 401, code: "authentication_required"},
		{name: "anonymous no route", method: "GET", path: "/v1/forward-auth", opts: []reqOption{nginx("POST", "/nowhere")}, status: 403, code: "no_route"},
		{name: "unknown method of the endpoint", method: "TRACE", path: "/v1/forward-auth", opts: []reqOption{tok, nginx("POST", "/agents/alpha/chat")}, status: 405, code: "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.with(t).do(c.method, c.path, "", c.opts...)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			if strings.Contains(string(r.Body), e.alphaToken) || slices.ContainsFunc(headerValues(r.Header), func(v string) bool { return strings.Contains(v, "datamachine_") }) {
				t.Fatalf("the answer carries a token: %v %s", r.Header, r.Body)
			}
			if c.status == 200 {
				if got := r.Header.Get("X-Agentauthz-Agent"); got != c.agent {
					t.Errorf("X-Agentauthz-Agent %q, want %q", got, c.agent)
				}
				if got := r.Header.Get("X-Agentauthz-Owner"); got != "alice" {
					t.Errorf("X-Agentauthz-Owner %q, want alice", got)
				}
				if r.Header.Get("X-Agentauthz-Decision-Id") == "" {
					t.Error("no X-Agentauthz-Decision-Id")
				}
				if got := r.Header.Get("X-Agentauthz-Tool"); got != c.tool {
					t.Errorf("X-Agentauthz-Tool %q, want %q", got, c.tool)
				}
				if c.method != "HEAD" && r.JSON(t)["allow"] != true {
					t.Errorf("body %s", r.Body)
				}
				return
			}
			if r.Header.Get("X-Agentauthz-Agent") != "" {
				t.Errorf("a refusal carries X-Agentauthz-Agent")
			}
			if got := r.ErrorCode(); got != c.code {
				t.Errorf("code %q, want %q: %s", got, c.code, r.Body)
			}
			if c.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if c.deniedBy != nil {
				var got []string
				for _, v := range r.JSON(t)["error"].(map[string]any)["denied_by"].([]any) {
					got = append(got, v.(string))
				}
				if !slices.Equal(got, c.deniedBy) {
					t.Errorf("denied_by %v, want %v", got, c.deniedBy)
				}
			}
		})
	}
}

func headerValues(h http.Header) []string {
	var out []string
	for _, vs := range h {
		out = append(out, vs...)
	}
	return out
}

// TestForwardAuthAnonymous: the anonymous caller passes only where the
// policy lets audience:public do the action; without anonymous access a
// request without credentials is 401.
func TestForwardAuthAnonymous(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.svc.PutGrant(context.Background(), principal.Operator(), "alpha", "public", "viewer"); err != nil {
		t.Fatalf("grant: %v", err)
	}
	if r := e.do("GET", "/v1/forward-auth", "", nginx("GET", "/agents/alpha/jobs")); r.Status != 200 || r.Header.Get("X-Agentauthz-Agent") != "alpha" {
		t.Fatalf("public viewer reading jobs: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/v1/forward-auth", "", nginx("POST", "/agents/alpha/chat")); r.Status != 401 || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("public viewer chatting: %d %s", r.Status, r.Body)
	}

	closed := newEnv(t, withoutAnonymous())
	if _, _, err := closed.svc.PutGrant(context.Background(), principal.Operator(), "alpha", "public", "viewer"); err != nil {
		t.Fatalf("grant: %v", err)
	}
	r := closed.do("GET", "/v1/forward-auth", "", nginx("GET", "/agents/alpha/jobs"))
	if r.Status != 401 || r.ErrorCode() != "authentication_required" || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no credential without anonymous access: %d %s", r.Status, r.Body)
	}
}

// TestForwardAuthHidesWhichAgentsExist: a caller without a credential gets
// the very same answer for an agent that exists and one that does not,
// with anonymous access on or off: 401 with the challenge, the same body
// and the same headers (no decision id), never 403 agent_not_found.
func TestForwardAuthHidesWhichAgentsExist(t *testing.T) {
	for _, access := range []struct {
		name string
		opts []envOption
	}{
		{"anonymous access on", nil},
		{"anonymous access off", []envOption{withoutAnonymous()}},
	} {
		e := newEnv(t, access.opts...)
		cases := []struct {
			name, method, path string
			opts               []reqOption
		}{
			{"existing agent", "GET", "/v1/forward-auth", []reqOption{nginx("POST", "/agents/alpha/chat")}},
			{"existing agent by id", "GET", "/v1/forward-auth", []reqOption{nginx("POST", "/agents/"+itoa(e.alpha.ID)+"/chat")}},
			{"existing agent's tool", "GET", "/v1/forward-auth", []reqOption{nginx("POST", "/agents/alpha/tools/web_search")}},
			{"existing agent through envoy", "POST", "/v1/forward-auth/envoy/agents/alpha/chat", nil},
			{"unknown agent", "GET", "/v1/forward-auth", []reqOption{nginx("POST", "/agents/nosuch/chat")}},
			{"unknown agent id", "GET", "/v1/forward-auth", []reqOption{nginx("POST", "/agents/424242/chat")}},
			{"agent id out of range", "GET", "/v1/forward-auth", []reqOption{nginx("POST", "/agents/99999999999999999999999/chat")}},
			{"unknown agent's tool", "GET", "/v1/forward-auth", []reqOption{nginx("POST", "/agents/nosuch/tools/web_search")}},
			{"unknown agent through envoy", "POST", "/v1/forward-auth/envoy/agents/nosuch/chat", nil},
		}
		var (
			first     *response
			firstName string
		)
		for _, c := range cases {
			t.Run(access.name+"/"+c.name, func(t *testing.T) {
				r := e.with(t).do(c.method, c.path, "", c.opts...)
				if r.Status != 401 || r.ErrorCode() != "authentication_required" || r.Header.Get("WWW-Authenticate") == "" {
					t.Fatalf("want 401 authentication_required with a challenge, got %d %v %s", r.Status, r.Header, r.Body)
				}
				if first == nil {
					first, firstName = r, c.name
					return
				}
				if string(r.Body) != string(first.Body) {
					t.Errorf("body %s, want the same as for %q: %s", r.Body, firstName, first.Body)
				}
				if got, want := answerHeaders(r.Header), answerHeaders(first.Header); !slices.Equal(got, want) {
					t.Errorf("headers %q, want the same as for %q: %q", got, firstName, want)
				}
			})
		}
	}
}

// answerHeaders lists a response's headers as "name: value", without those
// that differ between any two requests (date, request id).
func answerHeaders(h http.Header) []string {
	var out []string
	for name, vs := range h {
		if name == "Date" || name == "X-Request-Id" {
			continue
		}
		for _, v := range vs {
			out = append(out, name+": "+v)
		}
	}
	slices.Sort(out)
	return out
}
