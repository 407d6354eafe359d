package httpapi

import (
	"testing"
)

func TestIsJSONAcceptsParameters(t *testing.T) {
	cases := []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON", true},
		{"text/plain", false},
		{"application/jsonx", false},
		{"", false},
		{"application/x-www-form-urlencoded", false},
	}
	for _, c := range cases {
		if got := isJSON(c.ct); got != c.want {
			t.Errorf("isJSON(%q) = %v, want %v", c.ct, got, c.want)
		}
	}
}

func TestRequestIDKeepsPlainClientIDsOnly(t *testing.T) {
	if got := requestID("abc-123_X.y"); got != "abc-123_X.y" {
		t.Errorf("plain id replaced: %q", got)
	}
	for _, bad := range []string{"", "has space", "bad\nnewline", string(make([]byte, 65))} {
		if got := requestID(bad); got == bad || !validRequestID(got) {
			t.Errorf("requestID(%q) = %q, want a fresh valid id", bad, got)
		}
	}
	if first, second := requestID(""), requestID(""); first == second {
		t.Errorf("minted ids repeat: %q", first)
	}
}
