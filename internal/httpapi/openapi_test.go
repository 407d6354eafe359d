package httpapi_test

import (
	"net/http"
	"testing"
)

// TestOpenAPIValidationCatchesDrift proves the response validation used by
// every test would notice a response that drifts from the document.
func TestOpenAPIValidationCatchesDrift(t *testing.T) {
	oa := loadOpenAPI(t)
	jsonHeader := http.Header{"Content-Type": []string{"application/json"}}
	cases := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{name: "an undocumented field is drift", method: "GET", path: "/healthz", status: 200, body: `{"status":"ok","extra":1}`},
		{name: "an undocumented status is drift", method: "GET", path: "/healthz", status: 418, body: `{"status":"ok"}`},
		{name: "a token listing that leaks the raw token is drift", method: "GET", path: "/v1/agents/alpha/tokens", status: 200,
			body: `{"tokens":[{"token_id":1,"agent_id":1,"token_prefix":"p","label":"","capabilities":null,"last_used_at":null,"expires_at":null,"created_at":"2026-01-01T00:00:00Z","revoked_at":null,"token":"secret"}]}`},
		{name: "an error without a code is drift", method: "GET", path: "/v1/whoami", status: 401, body: `{"error":{"message":"x"}}`},
		{name: "an error body on an unknown route must match the error schema", method: "GET", path: "/nowhere", status: 404, body: `{"oops":true}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, "http://x"+c.path, nil)
			if err := oa.check(req, &response{Status: c.status, Header: jsonHeader, Body: []byte(c.body)}); err == nil {
				t.Fatal("validation passed; want it to fail")
			}
		})
	}
}
