package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOPAConfigRefusesBadFiles: a configuration that does not parse, names
// an unknown setting, plugin or plugin setting, a missing key file, or
// something OPA's own validation refuses, is refused with a message that
// names the culprit.
func TestOPAConfigRefusesBadFiles(t *testing.T) {
	pub := testPublicKey
	cases := []struct {
		name, config, want string
	}{
		{"not YAML or JSON", "services: [\n", "does not parse"},
		{"unknown top-level setting", "bundels: {}\n", `unknown or unsupported setting "bundels"`},
		{"discovery is not run", "discovery: {name: x}\n", `unsupported setting "discovery"`},
		{"the deprecated single bundle", "bundle: {name: x}\n", `unsupported setting "bundle"`},
		{"unknown plugin", "plugins: {envoy_ext_authz_grpc: {}}\n", `unknown plugin "envoy_ext_authz_grpc"`},
		{"unknown agentauthz setting", "plugins: {agentauthz: {allow_builtin: [http.send]}}\n", `unknown field "allow_builtin"`},
		{"allowance for a built-in that is not restricted", "plugins: {agentauthz: {allow_builtins: [time.now_ns]}}\n", `"time.now_ns" is not a restricted built-in`},
		{"missing key file", "plugins: {agentauthz: {key_files: {k: /nonexistent/bundle.pub.pem}}}\n", "key_files.k: open /nonexistent/bundle.pub.pem"},
		{"key both inline and from a file", fmt.Sprintf("keys: {k: {key: x}}\nplugins: {agentauthz: {key_files: {k: %s}}}\n", pub), "both an inline key"},
		{"bundle on an unknown service", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {b: {service: t, resource: x}}\n", `service name "t" not found`},
		{"signing with an unknown key", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {b: {resource: x, signing: {keyid: nope}}}\n", "nope"},
		{"two bundles", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {a: {resource: x}, b: {resource: y}}\n", "exactly one bundle, 2"},
		{"missing local bundle", "bundles: {b: {resource: 'file:///nonexistent/b.tar.gz'}}\n", "bundles.b.resource"},
		{"persisted bundle", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {b: {resource: x, persist: true}}\n", "persist is not supported"},
		{"decision logs on an unknown service", "services: {s: {url: 'http://127.0.0.1:1'}}\ndecision_logs: {service: t}\n", "decision_logs"},
		{"decision logs polling that OPA refuses", "services: {s: {url: 'http://127.0.0.1:1'}}\ndecision_logs: {service: s, reporting: {min_delay_seconds: 10, max_delay_seconds: 1}}\n", "decision_logs"},
		{"status on an unknown service", "services: {s: {url: 'http://127.0.0.1:1'}}\nstatus: {service: t}\n", "status"},
		{"key with an unsupported algorithm", "keys: {k: {key: x, algorithm: XX999}}\n", "unsupported algorithm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "opa.yaml", []byte(tc.config))
			_, err := LoadOPAConfig(path)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.config)
			}
			if !errors.Is(err, ErrOPAConfig) {
				t.Errorf("error does not wrap ErrOPAConfig: %v", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the file and %q", err, tc.want)
			}
		})
	}
}

// TestOPAConfigAccepts: OPA's settings in YAML or JSON, with the
// agentauthz section, give the bundle and the plugins they describe.
func TestOPAConfigAccepts(t *testing.T) {
	tarball := writeFile(t, "b.tar.gz", buildBundle(t, "valid", testSigningKey, nil))
	cases := []struct {
		name, config       string
		remote, local, log bool
	}{
		{"remote bundle, logs and status in YAML", fmt.Sprintf(`
services:
  acme: {url: "http://127.0.0.1:1"}
labels: {region: test}
keys:
  test: {algorithm: RS256}
bundles:
  authz: {service: acme, resource: /b.tar.gz, signing: {keyid: test}, polling: {min_delay_seconds: 1, max_delay_seconds: 2}}
decision_logs: {service: acme, reporting: {min_delay_seconds: 1, max_delay_seconds: 2}}
status: {service: acme}
default_decision: /ignored
plugins:
  agentauthz:
    allow_builtins: [http.send]
    key_files: {test: %s}
`, testPublicKey), true, false, true},
		{"local bundle in JSON", fmt.Sprintf(`{"keys": {"test": {"algorithm": "RS256"}}, "bundles": {"b": {"resource": "file://%s", "signing": {"keyid": "test"}}}, "plugins": {"agentauthz": {"key_files": {"test": %q}}}}`, tarball, testPublicKey), false, true, false},
		{"console decision logs only", "decision_logs: {console: true}\n", false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadOPAConfig(writeFile(t, "opa.conf", []byte(tc.config)))
			if err != nil {
				t.Fatal(err)
			}
			local, verify := c.LocalBundle()
			if c.RemoteBundle() != tc.remote || (local != "") != tc.local || c.DecisionLogs() != tc.log {
				t.Errorf("remote %v, local %q, logs %v; want %v, %v, %v", c.RemoteBundle(), local, c.DecisionLogs(), tc.remote, tc.local, tc.log)
			}
			if tc.local && (verify == nil || !verify.SignatureRequired()) {
				t.Errorf("local bundle with keys: verification %+v, want signatures required", verify)
			}
		})
	}
}

// TestOPAConfigExample: the README's example file is a valid configuration
// (its key file path is relative to the repository root).
func TestOPAConfigExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "bundles", "opa-config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte(" tests/testdata/"), []byte(" ../../tests/testdata/"))
	c, err := ParseOPAConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !c.RemoteBundle() || !c.DecisionLogs() {
		t.Errorf("remote bundle %v, decision logs %v: want both", c.RemoteBundle(), c.DecisionLogs())
	}
}
