package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/agentauthz/agentauthz/internal/authz"
	"github.com/agentauthz/agentauthz/internal/view"
)

func TestAuthorizeEncodingMatchesEncodingJSON(t *testing.T) {
	cases := map[string]authz.AuthorizeResult{
		"allow with empty lists":       {Allow: true, DeniedBy: []string{}, DecisionID: "abc", AgentID: 7},
		"nil lists encode as empty":    {Allow: false, AgentID: 1},
		"deny with reasons":            {DeniedBy: []string{"tool_policy", "token_ceiling"}, Reasons: []string{"tool \"x\" is denied", "a\\b"}, DecisionID: "d", AgentID: 9},
		"control and html characters":  {Reasons: []string{"\x00\x1f\n\r\t<>&\u2028\u2029"}},
		"invalid utf-8 becomes U+FFFD": {Reasons: []string{"bad \xff byte", "ok é 漢"}},
		"large agent id is exact":      {AgentID: 1<<62 + 1},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			got := appendAuthorize(nil, r)
			want, err := json.Marshal(view.DecisionOf(r.Allow, r.DeniedBy, r.Reasons, r.DecisionID, r.AgentID))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want)+"\n" {
				t.Fatalf("appendAuthorize differs from encoding/json of view.Decision:\ngot  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendStringEscapesLikeEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "\"quoted\"", "back\\slash", "\x00\x01\x7f", "<script>&", "\u2028\u2029", "é漢🙂", "\xff\xfe", "a\xc3"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}
