package e2e

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// The CLI's --format=json and the REST API show one result in one shape:
// for each operation, the CLI's output and the API's answer (unwrapped from
// the listing's object) are the same JSON, value for value. Operations the
// API answers with 204 print nothing.
func TestCLIJSONIsTheAPIsView(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, db string) {
		seedWorld(t, db)
		srv := startServer(t, db, "--trusted-proxies=127.0.0.1/32")
		tok := mintCLI(t, db, "chubes-bot", `--capabilities=["datamachine_chat"]`, "--label=views")

		// same runs the CLI as user:<as> and asks the API as that user (a
		// trusted proxy's header), and compares the two documents; member
		// unwraps the API's listing object.
		same := func(t *testing.T, as string, cliArgs []string, path, member string) {
			t.Helper()
			r := cli(t, db, append([]string{"--format=json", "--as", "user:" + as}, cliArgs...)...)
			if r.code != 0 {
				t.Fatalf("agentauthz %v: exit %d: %s", cliArgs, r.code, r.stderr)
			}
			var fromCLI, fromAPI any
			if err := json.Unmarshal([]byte(r.stdout), &fromCLI); err != nil {
				t.Fatalf("agentauthz %v: decoding %q: %v", cliArgs, r.stdout, err)
			}
			srv.do(t, "GET", path, nil, asUser(as)).want(t, http.StatusOK).decode(t, &fromAPI)
			if member != "" {
				fromAPI = fromAPI.(map[string]any)[member]
			}
			if !reflect.DeepEqual(fromCLI, fromAPI) {
				t.Errorf("agentauthz %v prints\n  %s\nGET %s answers\n  %v\nwant the same document", cliArgs, r.stdout, path, fromAPI)
			}
		}

		for _, c := range []struct {
			name, as     string
			cli          []string
			path, member string
		}{
			{"access check with a minimum role", "sam", []string{"agents", "access", "check", "chubes-bot", "--minimum-role=operator"},
				"/v1/agents/chubes-bot/access?minimum_role=operator", ""},
			{"access check without one", "carol", []string{"agents", "access", "check", "chubes-bot"}, "/v1/agents/chubes-bot/access", ""},
			{"access check answered no", "carol", []string{"agents", "access", "check", "chubes-private"}, "/v1/agents/chubes-private/access", ""},
			{"agent show", "sam", []string{"agents", "show", "chubes-bot"}, "/v1/agents/chubes-bot", ""},
			{"agent list", "chubes", []string{"agents", "list"}, "/v1/agents", "agents"},
			{"token list", "chubes", []string{"agents", "token", "list", "chubes-bot"}, "/v1/agents/chubes-bot/tokens", "tokens"},
			{"grant list", "chubes", []string{"agents", "access", "list", "chubes-bot"}, "/v1/agents/chubes-bot/grants", "grants"},
			{"user list", "root", []string{"users", "list"}, "/v1/users", "users"},
		} {
			t.Run(c.name, func(t *testing.T) { same(t, c.as, c.cli, c.path, c.member) })
		}

		// authorize: the same decision in the same shape (an allow's lists
		// are [] on both sides); only the decision id differs per decision.
		for _, c := range []struct{ name, as, agent, action string }{
			{"authorize allowed", "chubes", "chubes-bot", "chat"},
			{"authorize denied", "carol", "chubes-bot", "manage_flows"},
		} {
			t.Run(c.name, func(t *testing.T) {
				var fromCLI, fromAPI map[string]any
				cliJSON(t, db, &fromCLI, "authorize", "--as", "user:"+c.as, "--agent", c.agent, "--action", c.action)
				srv.do(t, "POST", "/v1/authorize", map[string]string{"agent": c.agent, "action": c.action}, asUser(c.as)).
					want(t, http.StatusOK).decode(t, &fromAPI)
				for _, d := range []map[string]any{fromCLI, fromAPI} {
					if id, _ := d["decision_id"].(string); id == "" {
						t.Fatalf("no decision_id in %v", d)
					}
					delete(d, "decision_id")
				}
				if !reflect.DeepEqual(fromCLI, fromAPI) {
					t.Errorf("agentauthz authorize prints %v; POST /v1/authorize answers %v", fromCLI, fromAPI)
				}
			})
		}

		t.Run("token revoke prints the revoked token as the API lists it", func(t *testing.T) {
			var revoked map[string]any
			cliJSON(t, db, &revoked, "agents", "token", "revoke", "chubes-bot", itoa(tok.ID))
			var list struct {
				Tokens []map[string]any `json:"tokens"`
			}
			srv.do(t, "GET", "/v1/agents/chubes-bot/tokens", nil, asUser("chubes")).want(t, http.StatusOK).decode(t, &list)
			for _, listed := range list.Tokens {
				if listed["token_id"] == revoked["token_id"] {
					if !reflect.DeepEqual(listed, revoked) || revoked["revoked_at"] == nil {
						t.Errorf("token revoke printed %v; the API lists %v", revoked, listed)
					}
					return
				}
			}
			t.Errorf("token %d is not listed after revoke: %v", tok.ID, list.Tokens)
		})

		t.Run("what the API answers with 204 prints nothing", func(t *testing.T) {
			for _, args := range [][]string{
				{"agents", "access", "revoke", "chubes-bot", "user:carol"},
				{"agents", "delete", "carol-bot"},
			} {
				r := cli(t, db, append([]string{"--format=json"}, args...)...)
				if r.code != 0 || r.stdout != "" {
					t.Errorf("agentauthz --format=json %v: exit %d, stdout %q; want 0 and nothing", args, r.code, r.stdout)
				}
			}
			srv.do(t, "DELETE", "/v1/agents/chubes-bot/grants/user:sam", nil, asUser("chubes")).want(t, http.StatusNoContent)
		})
	})
}
