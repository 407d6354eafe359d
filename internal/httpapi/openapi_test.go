package httpapi_test

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/agentauthz/agentauthz/internal/httpapi"
	"github.com/agentauthz/agentauthz/internal/metrics"
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

// servedDocument is the document as served, without the test router's
// adaptations (loadOpenAPI).
func servedDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return doc
}

// TestOpenAPIOperationsAreDescribed pins what linters and generators need
// of every operation: an id, a description and declared tags, and the
// X-Request-Id header on every response.
func TestOpenAPIOperationsAreDescribed(t *testing.T) {
	doc := servedDocument(t)
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		if tag.Description == "" {
			t.Errorf("tag %q has no description", tag.Name)
		}
		declared[tag.Name] = true
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || strings.TrimSpace(op.Description) == "" {
				t.Errorf("%s: operationId %q, description %q; want both", name, op.OperationID, op.Description)
			}
			if len(op.Tags) == 0 {
				t.Errorf("%s has no tags", name)
			}
			for _, tag := range op.Tags {
				if !declared[tag] {
					t.Errorf("%s: tag %q is not declared at the top level", name, tag)
				}
			}
			for status, res := range op.Responses.Map() {
				if res.Value.Headers["X-Request-Id"] == nil {
					t.Errorf("%s %s: X-Request-Id is not documented", name, status)
				}
			}
		}
	}
}

// routeTable is every route the server registers (with metrics, so that
// /metrics is one), as "METHOD /path/{param}" in the document's notation
// (echo's tail wildcard is the Envoy check's {path}).
func routeTable(t *testing.T) []string {
	t.Helper()
	srv := httpapi.New(httpapi.Config{}, httpapi.Deps{Metrics: metrics.New()})
	param := strings.NewReplacer("*", "{path}")
	var out []string
	for _, r := range srv.Echo().Routes() {
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		out = append(out, r.Method+" "+param.Replace(strings.Join(segs, "/")))
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIDocumentsEveryRoute checks the document and the router name
// the same operations, HEAD of every GET route included.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := servedDocument(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	routed := map[string]bool{}
	for _, r := range routeTable(t) {
		routed[r] = true
		if !documented[r] {
			t.Errorf("%s is routed but not documented", r)
		}
		if path, ok := strings.CutPrefix(r, "GET "); ok && !documented["HEAD "+path] {
			t.Errorf("GET %s has no HEAD in the document", path)
		}
	}
	for op := range documented {
		if !routed[op] {
			t.Errorf("%s is documented but not routed", op)
		}
	}
}

// TestHeadAnswersEveryGetRoute asks every GET route of the router (a new
// one is covered without editing this test) with HEAD: the same status and
// headers as GET, and no body.
func TestHeadAnswersEveryGetRoute(t *testing.T) {
	e := newEnv(t)
	params := strings.NewReplacer(":agent", "alpha")
	// Forward-auth needs an original request; the other routes ignore it.
	opts := []reqOption{asUser("admin"), header("X-Original-Method", "GET"), header("X-Original-URI", "/agents/alpha/memory")}
	n := 0
	for _, r := range e.handler.(*echo.Echo).Routes() {
		// The Envoy check's own method is the original request's: its HEAD
		// asks another question than its GET.
		if r.Method != http.MethodGet || strings.HasSuffix(r.Path, "/*") {
			continue
		}
		n++
		path := params.Replace(r.Path)
		t.Run(r.Path, func(t *testing.T) {
			e := e.with(t)
			get := e.do("GET", path, "", opts...)
			head := e.do("HEAD", path, "", opts...)
			if get.Status != http.StatusOK {
				t.Fatalf("GET %s: %d %s; want 200 so HEAD is compared with a real answer", path, get.Status, get.Body)
			}
			if head.Status != get.Status || len(head.Body) != 0 {
				t.Fatalf("HEAD %s: %d with %d body bytes; want %d and none", path, head.Status, len(head.Body), get.Status)
			}
			if g, h := headerNames(get.Header), headerNames(head.Header); g != h {
				t.Errorf("headers: GET %s, HEAD %s", g, h)
			}
			if g, h := get.Header.Get("Content-Type"), head.Header.Get("Content-Type"); g != h {
				t.Errorf("Content-Type: GET %q, HEAD %q", g, h)
			}
		})
	}
	if n < 10 {
		t.Fatalf("%d GET routes in the router; the table is not read", n)
	}
}

// headerNames lists a response's header names but those of the transfer
// (Date, Content-Length).
func headerNames(h http.Header) string {
	var names []string
	for k := range h {
		if k != "Date" && k != "Content-Length" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// TestHeadOutsideGetRoutes: HEAD where no GET is routed is refused like any
// other method, without a body (asked directly: the document has no
// operation to validate these against).
func TestHeadOutsideGetRoutes(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, path string
		status     int
		allow      string
	}{
		{name: "a POST-only path is 405 with Allow", path: "/v1/authorize", status: http.StatusMethodNotAllowed, allow: "OPTIONS, POST"},
		{name: "an unknown path is 404", path: "/nowhere", status: http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest("HEAD", e.url+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			r := &response{Status: res.StatusCode, Header: res.Header, Body: body}
			if r.Status != c.status || len(r.Body) != 0 || r.Header.Get("Allow") != c.allow {
				t.Fatalf("HEAD %s: %d, Allow %q, %d body bytes; want %d, Allow %q, none", c.path, r.Status, r.Header.Get("Allow"), len(r.Body), c.status, c.allow)
			}
		})
	}
}
