package httpapi_test

import (
	"strings"
	"testing"
)

// TestAuthorizeBodyIsReadOneWayOnly: the body a gateway or an audit filter
// reads as {"action":"read_jobs"} is never decided as another action. An
// agent token calls, so nothing but the body is in question.
func TestAuthorizeBodyIsReadOneWayOnly(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		body, code, field, msg string
	}{
		{`{"action":"read_jobs","ACTION":"manage_flows"}`, "unknown_field", "ACTION", `did you mean "action"`},
		{`{"ACTION":"manage_flows","action":"read_jobs"}`, "unknown_field", "ACTION", `"ACTION"`},
		{`{"action":"read_jobs","action":"manage_flows"}`, "invalid_json", "action", `duplicate key "action"`},
		{`{"action":"read_jobs","\u0061ction":"manage_flows"}`, "invalid_json", "action", `duplicate key "action"`},
		{`{"action":"read_jobs","tool":"a","tool":"b"}`, "invalid_json", "tool", `duplicate key "tool"`},
		{`{"action":"read_jobs\ud800"}`, "invalid_json", "action", "surrogate"},
		{"{\"action\":\"read_jobs\xff\"}", "invalid_json", "action", "UTF-8"},
		{`{"action":"read_jobs","agent":"01"}`, "invalid_agent", "agent", "canonical decimal"},
	}
	for _, c := range cases {
		res := e.do("POST", "/v1/authorize", c.body, bearer(e.alphaToken))
		if res.Status != 400 || res.ErrorCode() != c.code || res.ErrorField() != c.field {
			t.Errorf("%s: got %d %s, want 400 %s field %s", c.body, res.Status, res.Body, c.code, c.field)
			continue
		}
		if msg := errorMessage(res); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q does not contain %q", c.body, msg, c.msg)
		}
	}
	// The plain form is still answered.
	if res := e.do("POST", "/v1/authorize", `{"action":"chat","tool":null}`, bearer(e.alphaToken)); res.Status != 200 {
		t.Errorf("plain authorize: %d %s", res.Status, res.Body)
	}
}

// TestCanonicalIDsAndNumericLookingSlugsStillResolve: the id rule refuses
// only non-canonical spellings of ids, never a slug or a login.
func TestCanonicalIDsAndNumericLookingSlugsStillResolve(t *testing.T) {
	e := newEnv(t)
	admin := asUser("admin")
	if res := e.do("GET", "/v1/agents/"+itoa(e.alpha.ID), "", admin); res.Status != 200 {
		t.Errorf("agent by canonical id: %d %s", res.Status, res.Body)
	}
	if res := e.do("PATCH", "/v1/users/"+itoa(e.bob.ID), `{"name":"Bob"}`, admin); res.Status != 200 {
		t.Errorf("user by canonical id: %d %s", res.Status, res.Body)
	}
	if res := e.do("POST", "/v1/authorize", `{"action":"chat","agent":"`+itoa(e.alpha.ID)+`"}`, asUser("alice")); res.Status != 200 {
		t.Errorf("authorize by canonical agent id: %d %s", res.Status, res.Body)
	}
	// "1e0" and "-1" are slugs, not ids.
	for _, slug := range []string{"1e0", "-1"} {
		if res := e.do("POST", "/v1/agents", `{"slug":"`+slug+`","owner":"`+itoa(e.alice.ID)+`"}`, admin); res.Status != 201 {
			t.Fatalf("create agent %s: %d %s", slug, res.Status, res.Body)
		}
		if res := e.do("GET", "/v1/agents/"+slug, "", admin); res.Status != 200 {
			t.Errorf("agent %s by slug: %d %s", slug, res.Status, res.Body)
		}
	}
	if res := e.do("GET", "/v1/agents?after=0&limit=1", "", admin); res.Status != 200 {
		t.Errorf("after=0: %d %s", res.Status, res.Body)
	}
	res := e.do("PUT", "/v1/agents/alpha/grants/user%3A"+itoa(e.bob.ID), `{"role":"viewer"}`, admin)
	if res.Status != 201 {
		t.Errorf("grant to a canonical user id: %d %s", res.Status, res.Body)
	}
	if res := e.do("DELETE", "/v1/agents/alpha/tokens/"+itoa(e.alphaTokenID), "", admin); res.Status != 200 {
		t.Errorf("revoke by canonical id: %d %s", res.Status, res.Body)
	}
}
