package view

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agentauthz/agentauthz/internal/model"
)

func TestTimeIsUTCWithSixFractionalDigits(t *testing.T) {
	east := time.FixedZone("east", 2*3600)
	for in, want := range map[time.Time]string{
		time.Date(2026, 12, 2, 1, 5, 0, 123456789, east): "2026-12-01T23:05:00.123456Z", // UTC, truncated
		time.Date(2026, 12, 1, 23, 5, 0, 0, time.UTC):    "2026-12-01T23:05:00.000000Z", // whole second keeps its digits
		time.Date(2026, 12, 1, 23, 5, 0, 1000, time.UTC): "2026-12-01T23:05:00.000001Z",
	} {
		if got := Time(in); got != want {
			t.Errorf("Time(%v) = %s, want %s", in, got, want)
		}
		back, err := time.Parse(time.RFC3339Nano, want)
		if err != nil || !back.Equal(in.Truncate(time.Microsecond)) {
			t.Errorf("%s does not parse back to %v: %v, %v", want, in, back, err)
		}
	}
	if OptTime(nil) != nil {
		t.Error("OptTime(nil) is not nil")
	}
}

func TestViewsUseTheSeedFieldNames(t *testing.T) {
	at := time.Date(2026, 12, 1, 23, 5, 0, 123456000, time.UTC)
	parent := int64(3)
	nothing := []string(nil)
	cases := map[string]struct {
		v    any
		want string
	}{
		"created token": {CreatedTokenOf(model.Token{ID: 7, AgentID: 2, Hash: "secret-hash", Prefix: "aa_x", Label: "l", Capabilities: &nothing, CreatedAt: at, RevokedAt: &at, ParentID: &parent}, "raw"),
			`{"token_id":7,"agent_id":2,"token_prefix":"aa_x","label":"l","capabilities":[],"last_used_at":null,"expires_at":null,"created_at":"2026-12-01T23:05:00.123456Z","revoked_at":"2026-12-01T23:05:00.123456Z","parent_token_id":3,"token":"raw","warning":"Save this token now: it cannot be shown again."}`},
		"agent with role": {AgentWithRole(model.Agent{ID: 2, Slug: "bot", Name: "Bot", OwnerID: 1, Status: model.StatusActive, ToolPolicy: &model.ToolPolicy{Mode: "allow"}, CreatedAt: at, UpdatedAt: at}, "admin"),
			`{"agent_id":2,"agent_slug":"bot","agent_name":"Bot","owner_id":1,"status":"active","tool_policy":{"mode":"allow","tools":[]},"created_at":"2026-12-01T23:05:00.123456Z","updated_at":"2026-12-01T23:05:00.123456Z","role":"admin"}`},
		"agent without role": {AgentWithRole(model.Agent{ID: 2, CreatedAt: at, UpdatedAt: at}, ""),
			`{"agent_id":2,"agent_slug":"","agent_name":"","owner_id":0,"status":"","tool_policy":null,"created_at":"2026-12-01T23:05:00.123456Z","updated_at":"2026-12-01T23:05:00.123456Z"}`},
		"user": {UserOf(model.User{ID: 1, Login: "ada", CreatedAt: at}),
			`{"user_id":1,"login":"ada","name":"","roles":[],"status":"","created_at":"2026-12-01T23:05:00.123456Z"}`},
		"implicit grant": {GrantOf(model.Grant{AgentID: 2, Principal: "user:1", Role: "admin", GrantedAt: at}, true),
			`{"agent_id":2,"principal":"user:1","role":"admin","granted_at":"2026-12-01T23:05:00.123456Z","implicit":true}`},
		"empty lists": {struct {
			T []Token `json:"t"`
			U []User  `json:"u"`
		}{TokensOf(nil), UsersOf(nil)}, `{"t":[],"u":[]}`},
	}
	for name, c := range cases {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", name, b, err, c.want)
		}
	}
}
