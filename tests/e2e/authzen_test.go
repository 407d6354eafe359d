package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// authzenPEPSecret is the PEP credential the server is started with; like
// every token of the test, it must never appear in the server's log.
const authzenPEPSecret = "e2e-authzen-pep-secret-7c1d0a95"

// authzenDecision is one AuthZEN decision ("decision" and its "context").
type authzenDecision struct {
	Decision *bool `json:"decision"`
	Context  struct {
		DecisionID string   `json:"decision_id"`
		DeniedBy   []string `json:"denied_by"`
		Reasons    []string `json:"reasons"`
	} `json:"context"`
}

// authzenError is this API's error shape, with the member it names.
type authzenError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// evaluation is an AuthZEN evaluation request (or an item of a batch).
type evaluation map[string]any

// tokenSubject names an agent token by its id, never by the token.
func tokenSubject(id int64) map[string]any {
	return map[string]any{"type": "agent_token", "id": itoa(id)}
}

func userSubject(login string) map[string]any { return map[string]any{"type": "user", "id": login} }

func actionNamed(name string) map[string]any { return map[string]any{"name": name} }

// agentResource is an agent, with the tool in its properties when not "".
func agentResource(slug, tool string) map[string]any {
	r := map[string]any{"type": "agent", "id": slug}
	if tool != "" {
		r["properties"] = map[string]any{"tool": tool}
	}
	return r
}

// The AuthZEN Authorization API 1.0 through the built binary: discovery,
// PEP authentication, evaluations whose decisions are exactly
// POST /v1/authorize's, the batch's three evaluations_semantic options, and
// no token material in the server's log.
func TestAuthZENThroughTheBinary(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--authzen-pep-token="+authzenPEPSecret)
		pep := bearer(authzenPEPSecret)
		full := mintCLI(t, db, "chubes-bot")
		chatOnly := mintCLI(t, db, "chubes-bot", `--capabilities=["datamachine_chat"]`)
		revoked := mintCLI(t, db, "chubes-bot")
		cliJSON(t, db, nil, "agents", "token", "revoke", "chubes-bot", itoa(revoked.ID))

		evaluate := func(t *testing.T, ev evaluation) authzenDecision {
			t.Helper()
			var d authzenDecision
			srv.do(t, "POST", "/access/v1/evaluation", ev, pep).want(t, http.StatusOK).decode(t, &d)
			if d.Decision == nil || d.Context.DecisionID == "" {
				t.Fatalf("evaluation %v: %+v, want a decision and a decision_id", ev, d)
			}
			return d
		}

		t.Run("discovery names the endpoints under the PDP's base URL, without a credential", func(t *testing.T) {
			var doc map[string]string
			srv.do(t, "GET", "/.well-known/authzen-configuration", nil).want(t, http.StatusOK).decode(t, &doc)
			want := map[string]string{
				"policy_decision_point":       srv.base,
				"access_evaluation_endpoint":  srv.base + "/access/v1/evaluation",
				"access_evaluations_endpoint": srv.base + "/access/v1/evaluations",
			}
			for k, v := range want {
				if doc[k] != v {
					t.Errorf("%s = %q, want %q", k, doc[k], v)
				}
			}
			for k, v := range doc {
				if strings.HasSuffix(k, "_endpoint") && !strings.HasPrefix(v, srv.base+"/access/v1/") {
					t.Errorf("%s = %q, not an endpoint of this PDP", k, v)
				}
			}
		})

		t.Run("a caller without the PEP credential gets 401", func(t *testing.T) {
			ev := evaluation{"subject": tokenSubject(full.ID), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")}
			for _, c := range []struct {
				name, code string
				opts       []reqOpt
			}{
				{"no credential", "authentication_required", nil},
				{"a wrong secret", "invalid_token", []reqOpt{bearer("not-the-pep-secret")}},
				{"an agent token (no PEP credential)", "invalid_token", []reqOpt{bearer(full.Token)}},
				{"a trusted proxy's identity header", "authentication_required", []reqOpt{asUser("root")}},
			} {
				for _, path := range []string{"/access/v1/evaluation", "/access/v1/evaluations"} {
					r := srv.do(t, "POST", path, ev, c.opts...).want(t, http.StatusUnauthorized)
					if e := r.apiError(t); e.Error.Code != c.code {
						t.Errorf("%s, POST %s: code %q, want %q", c.name, path, e.Error.Code, c.code)
					}
					if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
						t.Errorf("%s, POST %s: WWW-Authenticate %q, want a Bearer challenge", c.name, path, h)
					}
				}
			}
		})

		t.Run("only --authzen-trusted-networks admits a peer without the secret, never --trusted-proxies", func(t *testing.T) {
			ev := evaluation{"subject": tokenSubject(full.ID), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")}
			for _, c := range []struct {
				name   string
				flags  []string
				status int
			}{
				{"a trusted proxy's clients are no PEP", []string{"--trusted-proxies=127.0.0.1/32"}, http.StatusUnauthorized},
				{"a trusted PEP network is", []string{"--authzen-trusted-networks=127.0.0.1/32"}, http.StatusOK},
			} {
				s := startServer(t, db, c.flags...)
				for _, path := range []string{"/access/v1/evaluation", "/access/v1/evaluations", "/access/v1/search/subject"} {
					body := ev
					if strings.Contains(path, "search") {
						body = evaluation{"subject": map[string]any{"type": "user"}, "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")}
					}
					s.do(t, "POST", path, body).want(t, c.status)
				}
			}
		})

		t.Run("a token subject's decision is POST /v1/authorize's for that token", func(t *testing.T) {
			for _, c := range []struct {
				name        string
				tok         createdToken
				action      string
				tool        string
				allow       bool
				deniedLayer string
			}{
				{"the owner's ceiling may use an allowed tool", full, "use_tools", "web_search", true, ""},
				{"the tool policy denies another tool", full, "use_tools", "shell", false, "tool_policy"},
				{"a chat-only token may chat", chatOnly, "chat", "", true, ""},
				{"a chat-only token may not use tools", chatOnly, "use_tools", "web_search", false, "token_ceiling"},
			} {
				d := evaluate(t, evaluation{"subject": tokenSubject(c.tok.ID), "action": actionNamed(c.action), "resource": agentResource("chubes-bot", c.tool)})
				direct := srv.authorize(t, c.tok.Token, c.action, c.tool)
				if *d.Decision != c.allow || direct.Allow != c.allow {
					t.Errorf("%s: AuthZEN decision %t, /v1/authorize allow %t, want %t", c.name, *d.Decision, direct.Allow, c.allow)
				}
				if !slices.Equal(d.Context.DeniedBy, direct.DeniedBy) || !slices.Equal(d.Context.Reasons, direct.Reasons) {
					t.Errorf("%s: AuthZEN context %+v, /v1/authorize denied_by %v reasons %v: want the same", c.name, d.Context, direct.DeniedBy, direct.Reasons)
				}
				if !c.allow && !contains(d.Context.DeniedBy, c.deniedLayer) {
					t.Errorf("%s: denied_by %v, want %s", c.name, d.Context.DeniedBy, c.deniedLayer)
				}
				if c.allow && (d.Context.DeniedBy != nil || d.Context.Reasons != nil) {
					t.Errorf("%s: an allow carries %+v, want only the decision_id", c.name, d.Context)
				}
			}
		})

		t.Run("user subjects: the owner may chat, a viewer may not", func(t *testing.T) {
			// The spec's first example, with this domain's subject and resource.
			if d := evaluate(t, evaluation{"subject": userSubject("chubes"), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")}); !*d.Decision {
				t.Errorf("the owner's chat: %+v, want decision true", d)
			}
			d := evaluate(t, evaluation{"subject": userSubject("carol"), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")})
			if *d.Decision || !contains(d.Context.DeniedBy, "agent_role") {
				t.Errorf("a viewer's chat: %+v, want decision false denied_by agent_role", d)
			}
		})

		t.Run("a subject that names no live principal is a plain deny that does not say why", func(t *testing.T) {
			unknown := evaluate(t, evaluation{"subject": tokenSubject(999999), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")})
			gone := evaluate(t, evaluation{"subject": tokenSubject(revoked.ID), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")})
			nobody := evaluate(t, evaluation{"subject": userSubject("nobody"), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")})
			for name, d := range map[string]authzenDecision{"an unknown token id": unknown, "a revoked token": gone, "an unknown user": nobody} {
				if *d.Decision || !slices.Equal(d.Context.DeniedBy, []string{"subject"}) {
					t.Errorf("%s: %+v, want decision false denied_by [subject]", name, d)
				}
			}
			if !slices.Equal(unknown.Context.Reasons, gone.Context.Reasons) {
				t.Errorf("an unknown and a revoked token are told apart: %v vs %v", unknown.Context.Reasons, gone.Context.Reasons)
			}
		})

		t.Run("evaluations: defaults inherited, results in order, the three semantics", func(t *testing.T) {
			// The spec's batch example: the subject once at the top, items
			// giving action and resource.
			allowItem := evaluation{"action": actionNamed("use_tools"), "resource": agentResource("chubes-bot", "web_search")}
			denyItem := evaluation{"action": actionNamed("use_tools"), "resource": agentResource("chubes-bot", "shell")}
			chatItem := evaluation{"action": actionNamed("chat")} // the top-level resource
			for _, c := range []struct {
				semantic string // "" leaves options out: execute_all
				items    []evaluation
				want     []bool
			}{
				{"", []evaluation{allowItem, denyItem, chatItem}, []bool{true, false, true}},
				{"execute_all", []evaluation{denyItem, allowItem, denyItem}, []bool{false, true, false}},
				{"deny_on_first_deny", []evaluation{allowItem, denyItem, chatItem}, []bool{true, false}},
				{"deny_on_first_deny", []evaluation{allowItem, chatItem}, []bool{true, true}},
				{"permit_on_first_permit", []evaluation{denyItem, allowItem, denyItem}, []bool{false, true}},
				{"permit_on_first_permit", []evaluation{denyItem, denyItem}, []bool{false, false}},
			} {
				body := map[string]any{"subject": tokenSubject(full.ID), "resource": agentResource("chubes-bot", ""), "evaluations": c.items}
				if c.semantic != "" {
					body["options"] = map[string]any{"evaluations_semantic": c.semantic}
				}
				var out struct {
					Evaluations []authzenDecision `json:"evaluations"`
				}
				srv.do(t, "POST", "/access/v1/evaluations", body, pep).want(t, http.StatusOK).decode(t, &out)
				got := make([]bool, len(out.Evaluations))
				for i, d := range out.Evaluations {
					if d.Decision == nil || d.Context.DecisionID == "" {
						t.Fatalf("%q: item %d is %+v, want a decision and a decision_id", c.semantic, i, d)
					}
					got[i] = *d.Decision
					if !*d.Decision && !contains(d.Context.DeniedBy, "tool_policy") {
						t.Errorf("%q: item %d denied_by %v, want tool_policy", c.semantic, i, d.Context.DeniedBy)
					}
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("semantic %q over %d items: decisions %v, want %v", c.semantic, len(c.items), got, c.want)
				}
			}
		})

		t.Run("bad batches are 400 with the member they name", func(t *testing.T) {
			item := evaluation{"subject": tokenSubject(full.ID), "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")}
			tooMany := make([]evaluation, 65)
			for i := range tooMany {
				tooMany[i] = item
			}
			for _, c := range []struct {
				name        string
				body        map[string]any
				code, field string
			}{
				{"an unknown semantic", map[string]any{"evaluations": []evaluation{item}, "options": map[string]any{"evaluations_semantic": "first_applicable"}},
					"invalid_field", "options.evaluations_semantic"},
				{"more evaluations than the limit", map[string]any{"evaluations": tooMany}, "too_many_evaluations", "evaluations"},
				{"an unknown subject type in an item", map[string]any{"evaluations": []evaluation{item,
					{"subject": map[string]any{"type": "robot", "id": "x"}, "action": actionNamed("chat"), "resource": agentResource("chubes-bot", "")}}},
					"invalid_subject", "evaluations[1].subject.type"},
			} {
				var e authzenError
				srv.do(t, "POST", "/access/v1/evaluations", c.body, pep).want(t, http.StatusBadRequest).decode(t, &e)
				if e.Error.Code != c.code || e.Error.Field != c.field {
					t.Errorf("%s: error %+v, want code %s field %s", c.name, e.Error, c.code, c.field)
				}
			}
		})

		t.Run("the access log carries the decision id and no token material", func(t *testing.T) {
			// The last call's line is written after its answer: wait for it,
			// then every earlier line is in the file too.
			var batch struct {
				Evaluations []authzenDecision `json:"evaluations"`
			}
			srv.do(t, "POST", "/access/v1/evaluations", map[string]any{"subject": tokenSubject(full.ID), "resource": agentResource("chubes-bot", ""),
				"evaluations": []evaluation{{"action": actionNamed("chat")}, {"action": actionNamed("read_jobs")}}}, pep).want(t, http.StatusOK).decode(t, &batch)
			ids := make([]string, len(batch.Evaluations))
			for i, d := range batch.Evaluations {
				ids[i] = d.Context.DecisionID
			}
			waitForLog(t, srv, func(line string) bool { // a batch's line: its decisions' ids
				return strings.Contains(line, "/access/v1/evaluations") && strings.Contains(line, `"decision_id":"`+strings.Join(ids, ",")+`"`)
			})
			last := evaluate(t, evaluation{"subject": tokenSubject(full.ID), "action": actionNamed("use_tools"), "resource": agentResource("chubes-bot", "shell")})
			logText := waitForLog(t, srv, func(line string) bool {
				return strings.Contains(line, "/access/v1/evaluation") && strings.Contains(line, last.Context.DecisionID)
			})
			secrets := map[string]string{"the PEP secret": authzenPEPSecret}
			for name, tok := range map[string]createdToken{"the full token": full, "the chat-only token": chatOnly, "the revoked token": revoked} {
				sum := sha256.Sum256([]byte(tok.Token))
				secrets[name] = tok.Token
				secrets[name+"'s secret part"] = tok.Token[strings.LastIndex(tok.Token, "_")+1:]
				secrets[name+"'s SHA-256"] = hex.EncodeToString(sum[:])
			}
			for name, s := range secrets {
				if strings.Contains(logText, s) {
					t.Errorf("the server's log contains %s", name)
				}
			}
		})
	})
}

// waitForLog polls the server's stderr until a line satisfies match and
// returns the whole log then; it fails t after a few seconds.
func waitForLog(t *testing.T, s *server, match func(line string) bool) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		text, err := os.ReadFile(s.errLog)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(strings.Split(string(text), "\n"), match) {
			return string(text)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line of the server's log matched within 5s; log:\n%s", text)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
