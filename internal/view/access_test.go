package view

import (
	"encoding/json"
	"testing"
)

func TestAccessShowsAbsentRolesAsNull(t *testing.T) {
	for _, c := range []struct {
		name string
		v    Access
		want string
	}{
		{"allowed with a role, asked about one", AccessOf(true, "operator", 2, "viewer"),
			`{"allowed":true,"role":"operator","agent_id":2,"minimum_role":"viewer"}`},
		{"refused without any role, asked about none", AccessOf(false, "", 7, ""),
			`{"allowed":false,"role":null,"agent_id":7,"minimum_role":null}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", c.name, b, err, c.want)
		}
	}
}
