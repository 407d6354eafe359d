package principal

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	long := "a" + strings.Repeat("b", 127)
	tests := []struct {
		name, in string
		want     string // canonical form; "" means rejected
	}{
		{"user by id", "user:3", "user:3"},
		{"user by login", "user:alice", "user:alice"},
		{"user by email login", "user:alice.b+ai@example.com", "user:alice.b+ai@example.com"},
		{"audience", "audience:acme", "audience:acme"},
		{"bare name means audience", "acme", "audience:acme"},
		{"public audience", "public", "audience:public"},
		{"128-character name", "audience:" + long, "audience:" + long},
		{"user with nothing", "user:", ""},
		{"audience with nothing", "audience:", ""},
		{"empty", "", ""},
		{"unknown type", "robot:x", ""},
		{"type is case-sensitive", "User:3", ""},
		{"nested colon", "user:a:b", ""},
		{"leading colon", ":acme", ""},
		{"space in name", "audience:ac me", ""},
		{"leading space", " acme", ""},
		{"tab", "acme\t", ""},
		{"control character", "ac\x00me", ""},
		{"newline", "user:alice\n", ""},
		{"name starting with a dot", ".acme", ""},
		{"name starting with a dash", "-acme", ""},
		{"non-ascii", "audience:café", ""},
		{"129-character name", "audience:" + long + "c", ""},
		{"overlong input", strings.Repeat("a", 1000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRef(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseRef(%q) = %v, want an error", tt.in, r)
				}
				var re *RefError
				if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRef) {
					t.Fatalf("ParseRef(%q) error %#v is not a RefError", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.in, err)
			}
			if r.String() != tt.want {
				t.Fatalf("ParseRef(%q).String() = %q, want %q", tt.in, r.String(), tt.want)
			}
		})
	}
}

func TestRefUserID(t *testing.T) {
	tests := []struct {
		in   string
		id   int64
		isID bool
	}{
		{"user:3", 3, true},
		{"user:alice", 0, false},
		{"user:0", 0, false},
		{"user:99999999999999999999", 0, false},
		{"audience:3", 0, false},
	}
	for _, tt := range tests {
		r, err := ParseRef(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := r.UserID(); id != tt.id || ok != tt.isID {
			t.Fatalf("%s.UserID() = (%d, %v), want (%d, %v)", tt.in, id, ok, tt.id, tt.isID)
		}
	}
}

// FuzzParseRef checks that ParseRef never panics and that every accepted
// reference round-trips through its canonical String form.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"user:3", "user:alice@example.com", "audience:acme", "acme", "user:", "robot:x", "a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRef) {
				t.Fatalf("ParseRef(%q) error %v is not ErrInvalidRef", s, err)
			}
			return
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %v, but its String %q parses to (%v, %v)", s, r, r.String(), again, err)
		}
		if r.String() != s && "audience:"+s != r.String() {
			t.Fatalf("ParseRef(%q) canonicalised to unrelated %q", s, r.String())
		}
	})
}
