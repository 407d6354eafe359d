package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentauthz/agentauthz/internal/httpapi"
)

// BenchmarkAuthorize measures the hot path in process (no network): token
// resolution from the cache, decode, one decision (memoized after the first
// request) and the encode. Access logging is off, as under load.
func BenchmarkAuthorize(b *testing.B) {
	e := newEnv(b, withHTTPConfig(func(c *httpapi.Config) { c.AccessLog = false }))
	body := `{"action":"use_tools","tool":"web_search"}`
	auth := "Bearer " + e.alphaToken
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/authorize", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
