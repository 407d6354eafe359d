package policy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/plugins"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/plugins/status"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// ErrOPAConfig is wrapped by every reason an OPA configuration file is refused.
var ErrOPAConfig = errors.New("opa config")

// PluginName is agentauthz's own section of an OPA configuration:
// plugins.agentauthz.
const PluginName = "agentauthz"

// Top-level settings of an OPA configuration file: those agentauthz runs
// through OPA's plugin manager, and those that do not concern an embedded
// engine and are ignored (with a warning). Any other key is refused, so a
// typo or a feature agentauthz does not run (discovery, the deprecated
// single `bundle`, server settings) never passes silently.
var (
	supportedSettings = []string{"bundles", "decision_logs", "keys", "labels", "plugins", "services", "status"}
	ignoredSettings   = []string{"default_authorization_decision", "default_decision"}
)

// agentauthzSettings is plugins.agentauthz, decoded strictly.
type agentauthzSettings struct {
	// AllowBuiltins names restricted built-ins bundles may call (see RestrictedBuiltins).
	AllowBuiltins []string `json:"allow_builtins"`
	// AllowNet names the hosts allowed built-ins may reach (OPA's
	// capabilities allow_net); without it, none.
	AllowNet []string `json:"allow_net"`
	// KeyFiles maps a key id of `keys` to a PEM file holding its public key
	// (OPA's `keys.<id>.key` takes the PEM inline); a relative path is
	// relative to the configuration file's directory.
	KeyFiles map[string]string `json:"key_files"`
}

// OPAConfig is a validated OPA configuration file: the plugin manager built
// from it (services, keys, labels; nothing started) and the bundle,
// decision-log and status settings, parsed by OPA's own code.
type OPAConfig struct {
	// File is the path the configuration was read from.
	File string
	// AllowBuiltins are plugins.agentauthz.allow_builtins.
	AllowBuiltins []string
	// AllowNet are plugins.agentauthz.allow_net.
	AllowNet []string
	// Warnings are OPA's own validation warnings and the ignored settings.
	Warnings []string
	// TestOnlyKeys are the ids of keys that are the repository's test-only
	// public key: anyone can sign bundles they accept.
	TestOnlyKeys []string

	manager    *plugins.Manager
	bundleName string               // "" without a bundles entry
	bundle     *bundleplugin.Source // its source, defaults injected
	logs       *logs.Config         // nil without decision_logs
	status     *status.Config       // nil without status
}

// LoadOPAConfig reads and validates the OPA configuration file at path
// (YAML or JSON); every error wraps ErrOPAConfig and names the file.
func LoadOPAConfig(path string) (*OPAConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOPAConfig, err)
	}
	c, err := parseOPAConfig(raw, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrOPAConfig, path, err)
	}
	c.File = path
	return c, nil
}

// ParseOPAConfig validates an OPA configuration whose relative key_files
// are relative to dir; every error wraps ErrOPAConfig.
func ParseOPAConfig(raw []byte, dir string) (*OPAConfig, error) {
	c, err := parseOPAConfig(raw, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOPAConfig, err)
	}
	return c, nil
}

func parseOPAConfig(raw []byte, dir string) (*OPAConfig, error) {
	var doc map[string]any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("does not parse as YAML or JSON: %w", err)
	}
	c := &OPAConfig{}
	for _, k := range sortedKeys(doc) {
		switch {
		case slices.Contains(supportedSettings, k):
		case slices.Contains(ignoredSettings, k):
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s is ignored: agentauthz always asks data.agentauthz.main.decision", k))
			delete(doc, k)
		default:
			return nil, fmt.Errorf("unknown or unsupported setting %q (agentauthz runs %s)", k, strings.Join(supportedSettings, ", "))
		}
	}
	own, err := takeOwnSettings(doc)
	if err != nil {
		return nil, err
	}
	if err := checkAllowBuiltins(own.AllowBuiltins); err != nil {
		return nil, fmt.Errorf("plugins.%s.%w", PluginName, err)
	}
	c.AllowBuiltins, c.AllowNet = own.AllowBuiltins, own.AllowNet
	if err := checkSections(doc); err != nil {
		return nil, err
	}
	if err := readKeyFiles(doc, own.KeyFiles, dir); err != nil {
		return nil, err
	}
	managerRaw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	c.manager, err = plugins.New(managerRaw, instanceID(), inmem.New(), plugins.WithParserOptions(parserOptions))
	if err != nil {
		return nil, err
	}
	c.Warnings = append(c.Warnings, c.manager.Config.Warnings...)
	if c.TestOnlyKeys, err = checkKeys(c.manager.PublicKeys()); err != nil {
		return nil, err
	}
	if err := c.parsePlugins(); err != nil {
		return nil, err
	}
	return c, nil
}

// takeOwnSettings removes plugins.agentauthz from doc and decodes it
// strictly; any other plugin is refused (agentauthz registers none).
func takeOwnSettings(doc map[string]any) (agentauthzSettings, error) {
	var own agentauthzSettings
	ps, ok := doc["plugins"].(map[string]any)
	if _, present := doc["plugins"]; present && !ok {
		return own, fmt.Errorf("plugins must be an object")
	}
	for _, name := range sortedKeys(ps) {
		if name != PluginName {
			return own, fmt.Errorf("unknown plugin %q: the only plugin setting is plugins.%s", name, PluginName)
		}
	}
	delete(doc, "plugins")
	if ps[PluginName] == nil {
		return own, nil
	}
	if err := decodeStrict(ps[PluginName], &own); err != nil {
		return own, fmt.Errorf("plugins.%s: %w", PluginName, err)
	}
	return own, nil
}

// readKeyFiles fills keys.<id>.key from plugins.agentauthz.key_files,
// reading relative paths from dir.
func readKeyFiles(doc map[string]any, files map[string]string, dir string) error {
	if len(files) == 0 {
		return nil
	}
	keys, ok := doc["keys"].(map[string]any)
	switch {
	case doc["keys"] == nil:
		keys = map[string]any{}
		doc["keys"] = keys
	case !ok:
		return fmt.Errorf("keys must be an object")
	}
	for _, id := range sortedKeys(files) {
		file := files[id]
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		pem, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("plugins.%s.key_files.%s: %w", PluginName, id, err)
		}
		k, ok := keys[id].(map[string]any)
		switch {
		case keys[id] == nil:
			k = map[string]any{}
			keys[id] = k
		case !ok:
			return fmt.Errorf("keys.%s must be an object", id)
		}
		if k["key"] != nil {
			return fmt.Errorf("keys.%s has both an inline key and plugins.%s.key_files.%s", id, PluginName, id)
		}
		k["key"] = string(pem)
	}
	return nil
}

// parsePlugins parses bundles, decision_logs and status with OPA's own
// config builders, as OPA's runtime does, against the manager's services and keys.
func (c *OPAConfig) parsePlugins() (err error) {
	m := c.manager
	bundles, err := bundleplugin.NewConfigBuilder().WithBytes(m.Config.Bundles).
		WithServices(m.Services()).WithKeyConfigs(m.PublicKeys()).Parse()
	if err != nil {
		return err
	}
	if bundles != nil {
		if err := c.oneBundle(bundles.Bundles); err != nil {
			return err
		}
	}
	c.logs, err = logs.NewConfigBuilder().WithBytes(m.Config.DecisionLogs).WithServices(m.Services()).Parse()
	if err != nil {
		return fmt.Errorf("decision_logs: %w", err)
	}
	c.status, err = status.NewConfigBuilder().WithBytes(m.Config.Status).WithServices(m.Services()).Parse()
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}

// oneBundle keeps the single bundle agentauthz serves. With keys
// configured, it must be signed: OPA would accept an unsigned bundle whose
// entry has no signing block; agentauthz requires the signature.
func (c *OPAConfig) oneBundle(sources map[string]*bundleplugin.Source) error {
	if len(sources) != 1 {
		return fmt.Errorf("bundles: agentauthz serves exactly one bundle, %d are configured", len(sources))
	}
	for name, src := range sources {
		if src.Signing != nil && !src.Signing.SignatureRequired() {
			src.Signing = bundle.NewVerificationConfig(c.manager.PublicKeys(), "", "", nil)
		}
		if src.Persist {
			return fmt.Errorf("bundles.%s.persist is not supported: the last good bundle is kept in memory", name)
		}
		if _, err := c.localPath(src); err != nil {
			return fmt.Errorf("bundles.%s.resource: %w", name, err)
		}
		c.bundleName, c.bundle = name, src
	}
	return nil
}

// localPath is the path of a file:// bundle resource, "" for a remote one.
func (*OPAConfig) localPath(src *bundleplugin.Source) (string, error) {
	if !strings.HasPrefix(src.Resource, "file://") {
		return "", nil
	}
	u, err := url.Parse(src.Resource)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(u.Path); err != nil {
		return "", err
	}
	return u.Path, nil
}

// LocalBundle returns the path and verification settings of a file://
// bundle entry, for Options.BundlePath and Options.Verification; "" when
// the configuration names no local bundle.
func (c *OPAConfig) LocalBundle() (string, *bundle.VerificationConfig) {
	if c.bundle == nil {
		return "", nil
	}
	p, _ := c.localPath(c.bundle) // checked by oneBundle
	if p == "" {
		return "", nil
	}
	return p, c.bundle.Signing
}

// RemoteBundle reports whether the configuration pulls a bundle from a bundle server.
func (c *OPAConfig) RemoteBundle() bool {
	p, _ := c.LocalBundle()
	return c.bundle != nil && p == ""
}

// Verification is how a bundle given outside the configuration
// (--policy-bundle) is verified: nil without keys; with keys, signed by one
// of them (the only one, or the one the signature names).
func (c *OPAConfig) Verification() *bundle.VerificationConfig {
	keys := c.manager.PublicKeys()
	if len(keys) == 0 {
		return nil
	}
	keyID := ""
	if len(keys) == 1 {
		keyID = sortedKeys(keys)[0]
	}
	return bundle.NewVerificationConfig(keys, keyID, "", nil)
}

// LoadSignedBundle reads the bundle at p and verifies its signatures with
// verify, as a bundle is verified before it activates.
func LoadSignedBundle(p string, verify *bundle.VerificationConfig) (*bundle.Bundle, error) {
	return loadBundle(p, verify)
}

// DecisionLogs reports whether decision logging is configured.
func (c *OPAConfig) DecisionLogs() bool { return c.logs != nil }

// parserOptions parse downloaded bundles as local ones are parsed.
var parserOptions = ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}

// instanceID labels this process in decision logs and status reports (labels.id).
func instanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "agentauthz-" + hex.EncodeToString(b[:])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
