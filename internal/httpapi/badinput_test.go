package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBadInputIsRejectedAndChangesNothing drives every malformed request the
// API must refuse, as a site administrator (so only the input is at fault),
// and proves the store is unchanged afterwards.
func TestBadInputIsRejectedAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", 129)
	// The seeded records by id, for non-canonical spellings of real ids:
	// before strict ids, "/tokens/0<id>" revoked the seeded token.
	tokenID, agentID, bobID, aliceID := itoa(e.alphaTokenID), itoa(e.alpha.ID), itoa(e.bob.ID), itoa(e.alice.ID)
	huge := `{"label":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, body string
		opts                     []reqOption
		status                   int
		code                     string
		field                    string
		msg                      string // a substring of error.message
	}{
		// JSON shape
		{name: "a body that is not JSON is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"label":`, status: 400, code: "invalid_json"},
		{name: "a garbled body is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `not json`, status: 400, code: "invalid_json"},
		{name: "a JSON array body is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `[]`, status: 400, code: "invalid_json"},
		{name: "a JSON null body is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `null`, status: 400, code: "invalid_json"},
		{name: "an empty body is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: ``, opts: []reqOption{contentType("application/json")}, status: 400, code: "invalid_json"},
		{name: "a whitespace body is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: "  \n", status: 400, code: "invalid_json"},
		{name: "trailing data after the object is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"label":"a"} {"label":"b"}`, status: 400, code: "invalid_json"},
		{name: "trailing garbage after the object is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"label":"a"}x`, status: 400, code: "invalid_json"},
		{name: "a wrong field type is invalid_field", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"label":5}`, status: 400, code: "invalid_field", field: "label"},
		{name: "an unknown field is unknown_field", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"labl":"x"}`, status: 400, code: "unknown_field", field: "labl"},
		// strict JSON: exact keys, no duplicates, valid UTF-8
		{name: "a key that matches only case-insensitively is unknown_field", method: "POST", path: "/v1/authorize", body: `{"action":"read_jobs","ACTION":"manage_flows"}`, status: 400, code: "unknown_field", field: "ACTION", msg: `"ACTION"`},
		{name: "a case-variant key alone is unknown_field", method: "POST", path: "/v1/authorize", body: `{"Action":"chat","agent":"alpha"}`, status: 400, code: "unknown_field", field: "Action", msg: `did you mean "action"`},
		{name: "a duplicate action is invalid_json naming the key", method: "POST", path: "/v1/authorize", body: `{"action":"read_jobs","action":"manage_flows"}`, status: 400, code: "invalid_json", field: "action", msg: `duplicate key "action"`},
		{name: "a duplicate agent is invalid_json naming the key", method: "POST", path: "/v1/authorize", body: `{"action":"chat","agent":"alpha","agent":"ghost"}`, status: 400, code: "invalid_json", field: "agent", msg: `duplicate key "agent"`},
		{name: "a duplicate spelled with an escape is invalid_json", method: "POST", path: "/v1/authorize", body: `{"action":"chat","agent":"alpha","\u0061gent":"ghost"}`, status: 400, code: "invalid_json", field: "agent", msg: `duplicate key "agent"`},
		{name: "a duplicate label is invalid_json and creates no token", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"label":"a","label":"b"}`, status: 400, code: "invalid_json", field: "label", msg: `duplicate key "label"`},
		{name: "duplicate capabilities are invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"capabilities":["read"],"capabilities":null}`, status: 400, code: "invalid_json", field: "capabilities", msg: `duplicate key "capabilities"`},
		{name: "invalid UTF-8 in a label is invalid_json and creates no token", method: "POST", path: "/v1/agents/alpha/tokens", body: "{\"label\":\"bad\xff\"}", status: 400, code: "invalid_json", field: "label", msg: "not valid UTF-8"},
		{name: "an encoded surrogate in a label is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: "{\"label\":\"\xed\xa0\x80\"}", status: 400, code: "invalid_json", field: "label", msg: "not valid UTF-8"},
		{name: "invalid UTF-8 in a key is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: "{\"lab\xffel\":\"x\"}", status: 400, code: "invalid_json", msg: "not valid UTF-8"},
		{name: "a lone surrogate escape in a label is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"label":"\ud800"}`, status: 400, code: "invalid_json", field: "label", msg: "surrogate"},
		{name: "a reversed surrogate pair in a label is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"label":"\udc00\ud800"}`, status: 400, code: "invalid_json", field: "label", msg: "surrogate"},
		{name: "a lone surrogate escape in a capability is invalid_json", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"capabilities":["read\udfff"]}`, status: 400, code: "invalid_json", field: "capabilities[0]", msg: "surrogate"},
		{name: "a duplicate inside tool_policy is invalid_json naming the key", method: "POST", path: "/v1/agents", body: `{"slug":"beta","owner":"alice","tool_policy":{"mode":"allow","mode":"deny","tools":[]}}`, status: 400, code: "invalid_json", field: "tool_policy.mode", msg: `duplicate key "mode" in "tool_policy"`},
		{name: "a duplicate inside tool_policy on update is invalid_json", method: "PATCH", path: "/v1/agents/alpha", body: `{"tool_policy":{"mode":"deny","tools":[],"tools":["web_search"]}}`, status: 400, code: "invalid_json", field: "tool_policy.tools", msg: `duplicate key "tools"`},
		{name: "a duplicate tool_policy is invalid_json", method: "PATCH", path: "/v1/agents/alpha", body: `{"tool_policy":null,"tool_policy":{"mode":"deny","tools":[]}}`, status: 400, code: "invalid_json", field: "tool_policy", msg: `duplicate key "tool_policy"`},
		{name: "a case-variant key inside tool_policy is unknown_field", method: "POST", path: "/v1/agents", body: `{"slug":"beta","owner":"alice","tool_policy":{"Mode":"allow","tools":[]}}`, status: 400, code: "unknown_field", field: "tool_policy.Mode", msg: `did you mean "mode"`},
		{name: "invalid UTF-8 inside tool_policy is invalid_json", method: "POST", path: "/v1/agents", body: "{\"slug\":\"beta\",\"owner\":\"alice\",\"tool_policy\":{\"mode\":\"allow\",\"tools\":[\"w\xc3\"]}}", status: 400, code: "invalid_json", field: "tool_policy.tools[0]", msg: "not valid UTF-8"},
		{name: "duplicate roles on user create are invalid_json", method: "POST", path: "/v1/users", body: `{"login":"carol","roles":["subscriber"],"roles":["administrator"]}`, status: 400, code: "invalid_json", field: "roles", msg: `duplicate key "roles"`},
		{name: "a case-variant status on user update is unknown_field", method: "PATCH", path: "/v1/users/bob", body: `{"name":"Bob","STATUS":"disabled"}`, status: 400, code: "unknown_field", field: "STATUS"},
		{name: "a duplicate grant role is invalid_json", method: "PUT", path: "/v1/agents/alpha/grants/user%3Abob", body: `{"role":"viewer","role":"operator"}`, status: 400, code: "invalid_json", field: "role", msg: `duplicate key "role"`},
		{name: "capabilities as a string is invalid_field", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"capabilities":"read"}`, status: 400, code: "invalid_field", field: "capabilities"},
		{name: "capabilities with a number is invalid_field", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"capabilities":[1]}`, status: 400, code: "invalid_field"},
		{name: "an empty capability name is invalid", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"capabilities":[""]}`, status: 400, code: "invalid_capabilities"},
		// expires_in
		{name: "expires_in 0 is invalid", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"expires_in":0}`, status: 400, code: "invalid_expires_in", field: "expires_in"},
		{name: "expires_in -1 is invalid", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"expires_in":-1}`, status: 400, code: "invalid_expires_in", field: "expires_in"},
		{name: "expires_in 1.5 is invalid", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"expires_in":1.5}`, status: 400, code: "invalid_field", field: "expires_in"},
		{name: "expires_in as a string is invalid", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"expires_in":"10"}`, status: 400, code: "invalid_field", field: "expires_in"},
		{name: "expires_in beyond int64 is invalid", method: "POST", path: "/v1/agents/alpha/tokens", body: `{"expires_in":99999999999999999999}`, status: 400, code: "invalid_field", field: "expires_in"},
		// media type and size
		{name: "a text/plain body is unsupported_media_type", method: "POST", path: "/v1/agents/alpha/tokens", body: `{}`, opts: []reqOption{contentType("text/plain")}, status: 415, code: "unsupported_media_type"},
		{name: "a body without content type is unsupported_media_type", method: "POST", path: "/v1/agents/alpha/tokens", body: `{}`, opts: []reqOption{noContentType()}, status: 415, code: "unsupported_media_type"},
		{name: "a form body is unsupported_media_type", method: "POST", path: "/v1/authorize", body: `action=chat`, opts: []reqOption{contentType("application/x-www-form-urlencoded")}, status: 415, code: "unsupported_media_type"},
		{name: "an oversized body is body_too_large", method: "POST", path: "/v1/agents/alpha/tokens", body: huge, status: 413, code: "body_too_large"},
		{name: "an oversized chunked body is body_too_large", method: "POST", path: "/v1/agents/alpha/tokens", body: huge, opts: []reqOption{chunked()}, status: 413, code: "body_too_large"},
		// path values
		{name: "an over-long agent reference is invalid_agent", method: "GET", path: "/v1/agents/" + long + "/tokens", status: 400, code: "invalid_agent"},
		{name: "an over-long agent reference is refused before the body is read", method: "POST", path: "/v1/agents/" + long + "/tokens", body: `{}`, status: 400, code: "invalid_agent"},
		{name: "a malformed agent reference is invalid_agent", method: "GET", path: "/v1/agents/Bad%20Slug!/tokens", status: 400, code: "invalid_agent"},
		{name: "an unknown agent is agent_not_found", method: "GET", path: "/v1/agents/ghost/tokens", status: 404, code: "agent_not_found"},
		{name: "an unknown agent id is agent_not_found", method: "POST", path: "/v1/agents/9999/tokens", body: `{}`, status: 404, code: "agent_not_found"},
		{name: "a non-numeric token id is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/abc", status: 400, code: "invalid_token_id"},
		{name: "token id 0 is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/0", status: 400, code: "invalid_token_id"},
		{name: "a negative token id is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/-1", status: 400, code: "invalid_token_id"},
		{name: "a fractional token id is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/1.5", status: 400, code: "invalid_token_id"},
		{name: "an overflowing token id is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/99999999999999999999", status: 400, code: "invalid_token_id"},
		{name: "token id +1 is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/+" + tokenID, status: 400, code: "invalid_token_id", field: "token_id", msg: "canonical decimal"},
		{name: "token id 01 is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/0" + tokenID, status: 400, code: "invalid_token_id", field: "token_id", msg: "canonical decimal"},
		{name: "token id 1.0 is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/" + tokenID + ".0", status: 400, code: "invalid_token_id", field: "token_id"},
		{name: "token id 1e0 is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/" + tokenID + "e0", status: 400, code: "invalid_token_id", field: "token_id"},
		{name: "token id with a leading space is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/%20" + tokenID, status: 400, code: "invalid_token_id", field: "token_id"},
		{name: "token id with a trailing space is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/" + tokenID + "%20", status: 400, code: "invalid_token_id", field: "token_id"},
		{name: "a percent-encoded token id is invalid_token_id", method: "DELETE", path: "/v1/agents/alpha/tokens/%3" + tokenID, status: 400, code: "invalid_token_id", field: "token_id"},
		{name: "agent id 01 in a path is invalid_agent", method: "GET", path: "/v1/agents/0" + agentID, status: 400, code: "invalid_agent", field: "agent", msg: "canonical decimal"},
		{name: "agent id +1 in a path is invalid_agent", method: "DELETE", path: "/v1/agents/+" + agentID, status: 400, code: "invalid_agent", field: "agent"},
		{name: "agent id 01 on delete is invalid_agent", method: "DELETE", path: "/v1/agents/0" + agentID, status: 400, code: "invalid_agent", field: "agent"},
		{name: "agent id 01 on token create is invalid_agent", method: "POST", path: "/v1/agents/0" + agentID + "/tokens", body: `{}`, status: 400, code: "invalid_agent", field: "agent"},
		{name: "agent id 01 on revoke is invalid_agent", method: "DELETE", path: "/v1/agents/0" + agentID + "/tokens/" + tokenID, status: 400, code: "invalid_agent", field: "agent"},
		{name: "an overflowing agent id is invalid_agent", method: "GET", path: "/v1/agents/99999999999999999999", status: 400, code: "invalid_agent", field: "agent"},
		{name: "agent id 0 is invalid_agent", method: "GET", path: "/v1/agents/0", status: 400, code: "invalid_agent", field: "agent"},
		{name: "user id 01 in a path is invalid_user", method: "PATCH", path: "/v1/users/0" + bobID, body: `{"name":"x"}`, status: 400, code: "invalid_user", field: "user", msg: "canonical decimal"},
		{name: "user id +1 in a path is invalid_user", method: "PATCH", path: "/v1/users/+" + bobID, body: `{"status":"disabled"}`, status: 400, code: "invalid_user", field: "user"},
		{name: "a principal with user id 01 is invalid_principal", method: "PUT", path: "/v1/agents/alpha/grants/user%3A0" + bobID, body: `{"role":"viewer"}`, status: 400, code: "invalid_principal", field: "principal", msg: "canonical decimal"},
		{name: "a principal with user id 01 on delete is invalid_principal", method: "DELETE", path: "/v1/agents/alpha/grants/user%3A0" + bobID, status: 400, code: "invalid_principal", field: "principal"},
		{name: "agent id 01 in the authorize body is invalid_agent", method: "POST", path: "/v1/authorize", body: `{"action":"chat","agent":"0` + agentID + `"}`, status: 400, code: "invalid_agent", field: "agent", msg: "canonical decimal"},
		{name: "agent id +1 in the authorize body is invalid_agent", method: "POST", path: "/v1/authorize", body: `{"action":"chat","agent":"+` + agentID + `"}`, status: 400, code: "invalid_agent", field: "agent"},
		{name: "owner id 01 in the agent body is invalid_owner", method: "POST", path: "/v1/agents", body: `{"slug":"beta","owner":"0` + aliceID + `"}`, status: 400, code: "invalid_owner", field: "owner", msg: "canonical decimal"},
		{name: "owner id +1 in the agent body is invalid_owner", method: "POST", path: "/v1/agents", body: `{"slug":"beta","owner":"+` + aliceID + `"}`, status: 400, code: "invalid_owner", field: "owner"},
		{name: "an unknown token is token_not_found", method: "DELETE", path: "/v1/agents/alpha/tokens/9999", status: 404, code: "token_not_found"},
		// roles and paging
		{name: "minimum_role owner is invalid_role on access", method: "GET", path: "/v1/agents/alpha/access?minimum_role=owner", status: 400, code: "invalid_role"},
		{name: "minimum_role owner is invalid_role on listing", method: "GET", path: "/v1/agents?minimum_role=owner", status: 400, code: "invalid_role"},
		{name: "a negative limit is invalid_limit", method: "GET", path: "/v1/agents?limit=-1", status: 400, code: "invalid_limit"},
		{name: "a non-integer limit is invalid_limit", method: "GET", path: "/v1/agents?limit=ten", status: 400, code: "invalid_limit"},
		{name: "limit 0 is invalid_limit", method: "GET", path: "/v1/agents?limit=0", status: 400, code: "invalid_limit"},
		{name: "limit above 1000 is invalid_limit", method: "GET", path: "/v1/agents?limit=1001", status: 400, code: "invalid_limit"},
		{name: "a negative after is invalid_after", method: "GET", path: "/v1/agents?after=-5", status: 400, code: "invalid_after"},
		{name: "after +1 is invalid_after", method: "GET", path: "/v1/agents?after=%2B1", status: 400, code: "invalid_after", field: "after"},
		{name: "after 01 is invalid_after", method: "GET", path: "/v1/agents?after=01", status: 400, code: "invalid_after", field: "after"},
		{name: "limit 05 is invalid_limit", method: "GET", path: "/v1/agents?limit=05", status: 400, code: "invalid_limit", field: "limit"},
		{name: "limit 1e1 is invalid_limit", method: "GET", path: "/v1/agents?limit=1e1", status: 400, code: "invalid_limit", field: "limit"},
		{name: "a non-integer after is invalid_after", method: "GET", path: "/v1/agents?after=x", status: 400, code: "invalid_after"},
		// grants
		{name: "an unknown principal type is invalid_principal", method: "PUT", path: "/v1/agents/alpha/grants/robot%3Ax", body: `{"role":"viewer"}`, status: 400, code: "invalid_principal"},
		{name: "an unknown grant role is invalid_role", method: "PUT", path: "/v1/agents/alpha/grants/user%3Abob", body: `{"role":"owner"}`, status: 400, code: "invalid_role"},
		{name: "a grant without a role is invalid_role", method: "PUT", path: "/v1/agents/alpha/grants/user%3Abob", body: `{}`, status: 400, code: "invalid_role"},
		{name: "a grant to an unknown user is user_not_found", method: "PUT", path: "/v1/agents/alpha/grants/user%3Aghost", body: `{"role":"viewer"}`, status: 404, code: "user_not_found"},
		{name: "granting the owner is owner_access_implicit", method: "PUT", path: "/v1/agents/alpha/grants/user%3Aalice", body: `{"role":"viewer"}`, status: 409, code: "owner_access_implicit"},
		{name: "removing a grant that does not exist is grant_not_found", method: "DELETE", path: "/v1/agents/alpha/grants/audience%3Aacme", status: 404, code: "grant_not_found"},
		// agents
		{name: "an invalid slug is invalid_slug", method: "POST", path: "/v1/agents", body: `{"slug":"Not A Slug"}`, status: 400, code: "invalid_slug"},
		{name: "a missing slug is invalid_slug", method: "POST", path: "/v1/agents", body: `{"name":"x"}`, status: 400, code: "invalid_slug"},
		{name: "a duplicate slug is slug_taken", method: "POST", path: "/v1/agents", body: `{"slug":"alpha","owner":"alice"}`, status: 409, code: "slug_taken"},
		{name: "an unknown owner is user_not_found", method: "POST", path: "/v1/agents", body: `{"slug":"beta","owner":"ghost"}`, status: 404, code: "user_not_found"},
		{name: "a tool policy with a bad mode is invalid_tool_policy", method: "POST", path: "/v1/agents", body: `{"slug":"beta","tool_policy":{"mode":"maybe","tools":[]}}`, status: 400, code: "invalid_tool_policy"},
		{name: "a tool policy that is not an object is invalid_field", method: "POST", path: "/v1/agents", body: `{"slug":"beta","tool_policy":"allow"}`, status: 400, code: "invalid_field", field: "tool_policy"},
		{name: "an unknown tool policy field is unknown_field", method: "POST", path: "/v1/agents", body: `{"slug":"beta","tool_policy":{"mode":"allow","tools":[],"x":1}}`, status: 400, code: "unknown_field", field: "tool_policy.x"},
		{name: "a tool policy with a wrong tools type is invalid_field", method: "POST", path: "/v1/agents", body: `{"slug":"beta","tool_policy":{"mode":"allow","tools":"web"}}`, status: 400, code: "invalid_field", field: "tool_policy.tools"},
		{name: "an empty agent update is empty_update", method: "PATCH", path: "/v1/agents/alpha", body: `{}`, status: 400, code: "empty_update"},
		{name: "an unknown agent status is invalid_status", method: "PATCH", path: "/v1/agents/alpha", body: `{"status":"zombie"}`, status: 400, code: "invalid_status"},
		{name: "an agent name of the wrong type is invalid_field", method: "PATCH", path: "/v1/agents/alpha", body: `{"name":["x"]}`, status: 400, code: "invalid_field", field: "name"},
		{name: "deleting an unknown agent is agent_not_found", method: "DELETE", path: "/v1/agents/ghost", status: 404, code: "agent_not_found"},
		// users
		{name: "an unknown user role is invalid_role", method: "POST", path: "/v1/users", body: `{"login":"carol","roles":["wizard"]}`, status: 400, code: "invalid_role"},
		{name: "a user without roles is invalid_role", method: "POST", path: "/v1/users", body: `{"login":"carol"}`, status: 400, code: "invalid_role"},
		{name: "an invalid login is invalid_login", method: "POST", path: "/v1/users", body: `{"login":"bad login","roles":["editor"]}`, status: 400, code: "invalid_login"},
		{name: "a duplicate login is login_taken", method: "POST", path: "/v1/users", body: `{"login":"bob","roles":["editor"]}`, status: 409, code: "login_taken"},
		{name: "updating an unknown user is user_not_found", method: "PATCH", path: "/v1/users/ghost", body: `{"name":"x"}`, status: 404, code: "user_not_found"},
		{name: "an unknown user status is invalid_status", method: "PATCH", path: "/v1/users/bob", body: `{"status":"asleep"}`, status: 400, code: "invalid_status"},
		{name: "roles as a string is invalid_field", method: "PATCH", path: "/v1/users/bob", body: `{"roles":"editor"}`, status: 400, code: "invalid_field", field: "roles"},
		// runtime
		{name: "authorize without an action is invalid_action", method: "POST", path: "/v1/authorize", body: `{"agent":"alpha"}`, status: 400, code: "invalid_action"},
		{name: "authorize with a numeric action is invalid_field", method: "POST", path: "/v1/authorize", body: `{"action":5,"agent":"alpha"}`, status: 400, code: "invalid_field", field: "action"},
		{name: "authorize with an unknown field is unknown_field", method: "POST", path: "/v1/authorize", body: `{"action":"chat","agent":"alpha","why":"x"}`, status: 400, code: "unknown_field", field: "why"},
		{name: "authorize without an agent for a user is invalid_agent", method: "POST", path: "/v1/authorize", body: `{"action":"chat"}`, status: 400, code: "invalid_agent"},
		{name: "authorize on an unknown agent is agent_not_found", method: "POST", path: "/v1/authorize", body: `{"action":"chat","agent":"ghost"}`, status: 404, code: "agent_not_found"},
		// routing
		{name: "an unknown route is not_found", method: "GET", path: "/v1/nothing-here", status: 404, code: "not_found"},
		{name: "a route outside v1 is not_found", method: "GET", path: "/v2/agents", status: 404, code: "not_found"},
		{name: "a wrong method is method_not_allowed", method: "PUT", path: "/v1/agents", body: `{}`, status: 405, code: "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			before := e.snapshot()
			opts := append([]reqOption{asUser("admin")}, c.opts...)
			res := e.do(c.method, c.path, c.body, opts...)
			if res.Status != c.status || res.ErrorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Body, c.status, c.code)
			}
			if c.field != "" && res.ErrorField() != c.field {
				t.Errorf("field = %q, want %q", res.ErrorField(), c.field)
			}
			if msg := errorMessage(res); !strings.Contains(msg, c.msg) {
				t.Errorf("message %q does not contain %q", msg, c.msg)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("the store changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// errorMessage returns error.message of an error body ("" if none).
func errorMessage(r *response) string {
	var b struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Message
}
