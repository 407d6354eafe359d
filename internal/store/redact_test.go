package store_test

import (
	"testing"

	"github.com/agentauthz/agentauthz/internal/store"
)

func TestRedactURL(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"password in user info is hidden", "postgres://app:s3cret@db:5432/agentauthz?sslmode=disable", "postgres://app:xxxxx@db:5432/agentauthz?sslmode=disable"},
		{"user without password is kept", "postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres"},
		{"password parameter is hidden", "postgres://db/agentauthz?password=s3cret&user=app", "postgres://db/agentauthz?password=xxxxx&user=app"},
		{"sqlite path is kept", "sqlite:/var/lib/agentauthz.db", "sqlite:/var/lib/agentauthz.db"},
		{"unparsable URL still hides the password", "postgres://app:s3cret@db:bad port/x", "postgres://app:xxxxx@db:bad port/x"},
		{"unparsable URL hides a password parameter", "postgres://db:bad port/x?password=s3cret&sslmode=disable", "postgres://db:bad port/x?password=xxxxx&sslmode=disable"},
		{"password containing @ is hidden whole", "postgres://app:p@ss@db/x", "postgres://app:xxxxx@db/x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := store.RedactURL(c.in); got != c.want {
				t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
