package e2e

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/agentauthz/agentauthz/internal/store/pgtest"
)

// SQLite is a file the server holds open: it cannot be taken away from a
// running server in a way a test can do portably (and root ignores file
// modes), so this rule is checked on PostgreSQL only.
func TestStoreUnavailableAnswers503NeverAllow(t *testing.T) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		db := pgtest.NewDatabase(t)
		seedWorld(t, db)
		srv := startServer(t, db)
		used := mintCLI(t, db, "chubes-bot")
		fresh := mintCLI(t, db, "chubes-bot") // never presented: not in the cache
		if d := srv.authorize(t, used.Token, "use_tools", "web_search"); !d.Allow {
			t.Fatalf("before the outage: %+v, want allow", d)
		}

		dropDatabase(t, db)

		r := srv.do(t, "POST", "/v1/authorize", map[string]string{"action": "use_tools", "tool": "web_search"}, bearer(fresh.Token))
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("authorize with an uncached token while the store is gone: %d %s, want 503", r.status, r.body)
		} else if e := r.apiError(t); e.Error.Code != "unavailable" {
			t.Errorf("code %q, want unavailable", e.Error.Code)
		}
		if strings.Contains(string(r.body), `"allow":true`) {
			t.Errorf("an allow while the store is gone: %s", r.body)
		}
		srv.do(t, "GET", "/readyz", nil).want(t, http.StatusServiceUnavailable)
	})
}

// dropDatabase drops the database of dbURL, ending the server's connections.
func dropDatabase(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("postgres", pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
		t.Fatalf("drop database %s: %v", name, err)
	}
}
