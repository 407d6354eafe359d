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
		{"misspelt bundle setting", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {authz: {resource: x, pollin: {min_delay_seconds: 1}}}\n", `bundles.authz: unknown field "pollin"`},
		{"misspelt bundle polling setting", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {authz: {resource: x, polling: {min_delay: 1}}}\n", `bundles.authz: unknown field "min_delay"`},
		{"misspelt signing setting", "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {authz: {resource: x, signing: {key_id: k}}}\n", `bundles.authz: unknown field "key_id"`},
		{"misspelt decision-log setting", "decision_logs: {console: true, reportin: {min_delay_seconds: 1}}\n", `decision_logs: unknown field "reportin"`},
		{"misspelt status setting", "status: {console: true, promethues: true}\n", `status: unknown field "promethues"`},
		{"misspelt service setting", "services: {s: {url: 'http://127.0.0.1:1', credentails: {bearer: {token: t}}}}\n", `services.s: unknown field "credentails"`},
		{"misspelt credentials setting", "services: {s: {url: 'http://127.0.0.1:1', credentials: {bearer: {tokn: t}}}}\n", `services.s: unknown field "tokn"`},
		{"misspelt setting in a list of services", "services: [{name: s, url: 'http://127.0.0.1:1', hedaers: {}}]\n", `services[0]: unknown field "hedaers"`},
		{"misspelt key setting", "keys: {k: {key: x, algoritm: HS256}}\n", `keys.k: unknown field "algoritm"`},
		{"an OCI registry service", "services: {s: {url: 'https://registry.example', type: oci}}\n", "services.s.type: oci is not supported"},
		{"inline key that is not PEM", "keys: {k: {key: 'not a pem', algorithm: RS256}}\n", "keys.k: key is not PEM"},
		{"key file that is not PEM", "keys: {k: {algorithm: RS256}}\nplugins: {agentauthz: {key_files: {k: " + writeFile(t, "garbage.pem", []byte("garbage")) + "}}}\n", "keys.k: key is not PEM"},
		{"PEM block that is not a key", "keys: {k: {algorithm: RS256}}\nplugins: {agentauthz: {key_files: {k: " + writeFile(t, "garbage.pem", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")) + "}}}\n", `keys.k: PEM block "PUBLIC KEY"`},
		{"RSA key for an ECDSA algorithm", fmt.Sprintf("keys: {k: {algorithm: ES256}}\nplugins: {agentauthz: {key_files: {k: %s}}}\n", pub), "cannot verify ES256"},
		{"unknown allow_net setting", "plugins: {agentauthz: {allow_nets: []}}\n", `unknown field "allow_nets"`},
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
// once its key file exists, and it does not trust the test-only key.
func TestOPAConfigExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "bundles", "opa-config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const keyFile = " /etc/agentauthz/bundle-signer.pub.pem"
	if !bytes.Contains(raw, []byte(keyFile)) {
		t.Fatalf("the example does not name%s", keyFile)
	}
	dir := filepath.Dir(freshPublicKey(t, "bundle-signer.pub.pem"))
	c, err := ParseOPAConfig(bytes.ReplaceAll(raw, []byte(keyFile), []byte(" bundle-signer.pub.pem")), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.RemoteBundle() || !c.DecisionLogs() || len(c.TestOnlyKeys) != 0 {
		t.Errorf("remote bundle %v, decision logs %v, test-only keys %v: want both, none", c.RemoteBundle(), c.DecisionLogs(), c.TestOnlyKeys)
	}
}

// TestOPAConfigKeyFilesRelativeToTheFile: a relative key_files path is read
// from the configuration file's directory, not the working directory.
func TestOPAConfigKeyFilesRelativeToTheFile(t *testing.T) {
	key := freshPublicKey(t, "signer.pub.pem")
	dir := filepath.Dir(key)
	config := filepath.Join(dir, "opa.yaml")
	if err := os.WriteFile(config, []byte("keys: {k: {algorithm: RS256}}\nplugins: {agentauthz: {key_files: {k: signer.pub.pem}}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadOPAConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(key)
	if got := c.Verification().PublicKeys["k"].Key; got != string(pem) {
		t.Errorf("keys.k is %q, want the PEM of %s", got, key)
	}
}

// TestOPAConfigTestOnlyKey: a configured key that is the repository's
// test-only public key is named (serve warns); another key is not.
func TestOPAConfigTestOnlyKey(t *testing.T) {
	file, err := os.ReadFile(testPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != testOnlyPublicKey {
		t.Fatalf("testOnlyPublicKey differs from %s", testPublicKey)
	}
	cases := []struct {
		name, file string
		want       []string
	}{
		{"the test-only key", testPublicKey, []string{"k"}},
		{"an operator's key", freshPublicKey(t, "k.pub.pem"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseOPAConfig(fmt.Appendf(nil, "keys: {k: {algorithm: RS256}}\nplugins: {agentauthz: {key_files: {k: %q}}}\n", tc.file), "")
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(c.TestOnlyKeys) != fmt.Sprint(tc.want) {
				t.Errorf("test-only keys %v, want %v", c.TestOnlyKeys, tc.want)
			}
		})
	}
}
