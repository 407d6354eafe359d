package policy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBuiltinsReachNothingUnlessAllowed: a bundle whose validation (run at
// activation) asks a built-in to fetch something is refused; the fetch
// happens only when the operator both allows the built-in and, for the
// network, names the host. A file:// schema ref is read whatever allow_net
// says (OPA does not gate it): that is why the schema built-ins are restricted.
func TestBuiltinsReachNothingUnlessAllowed(t *testing.T) {
	var hits atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"type": "string"}`))
	}))
	defer ts.Close()
	host := strings.Split(strings.TrimPrefix(ts.URL, "http://"), ":")[0]
	schemaFile := writeFile(t, "schema.json", []byte(`{"type": "string"}`))

	// validating asks the built-in call, at activation; "fetched" in the
	// refusal says the call read the schema (an object is not a string). A
	// call that fails is undefined (OPA's non-strict built-in errors): the
	// bundle then activates, having reached nothing.
	validating := func(call string) map[string]string {
		return map[string]string{"leak.rego": "package agentauthz.validate\n\nerrors contains \"fetched\" if {\n\tr := " + call + "\n\tr[0] == false\n}\n"}
	}
	httpRef := fmt.Sprintf(`json.match_schema({"a": 5}, {"$ref": concat("", [%q, "/leak/", "x"])})`, ts.URL)
	fileRef := fmt.Sprintf(`json.match_schema({"a": 5}, {"$ref": %q})`, (&url.URL{Scheme: "file", Path: schemaFile}).String())
	verifyRef := fmt.Sprintf(`json.verify_schema({"$ref": %q})`, ts.URL+"/leak/verify")
	send := fmt.Sprintf(`[false, http.send({"method": "POST", "url": %q, "body": {"leak": true}})]`, ts.URL+"/leak/send")
	cases := []struct {
		name          string
		call          string
		allow, hosts  []string
		want          string // part of the refusal; "" activates
		wantRequested bool
	}{
		{"json.match_schema with an http $ref is refused", httpRef, nil, nil, "undefined function json.match_schema", false},
		{"json.match_schema with a file $ref is refused", fileRef, nil, nil, "undefined function json.match_schema", false},
		{"json.verify_schema with an http $ref is refused", verifyRef, nil, nil, "undefined function json.verify_schema", false},
		{"allowed json.match_schema reaches no host unless named", httpRef, []string{"json.match_schema"}, nil, "", false},
		{"allowed http.send reaches no host unless named", send, []string{"http.send"}, nil, "", false},
		{"allowed json.match_schema reaches a named host", httpRef, []string{"json.match_schema"}, []string{host}, "fetched", true},
		{"allowed json.match_schema reads a file:// ref, allow_net or not", fileRef, []string{"json.match_schema"}, nil, "fetched", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			path := writeFile(t, "bundle.tar.gz", buildBundle(t, "valid", "", validating(tc.call)))
			_, err := New(context.Background(), Options{BundlePath: path, AllowBuiltins: tc.allow, AllowNet: tc.hosts})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want a refusal naming %q", err, tc.want)
			}
			if requested := hits.Load() > before; requested != tc.wantRequested {
				t.Errorf("the server was requested: %v, want %v", requested, tc.wantRequested)
			}
		})
	}
}
