package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/agentauthz/agentauthz/bundles"
	"github.com/agentauthz/agentauthz/policies"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/util"
)

// sourceEmbedded is the Activation.Source of the bundle compiled into the binary.
const sourceEmbedded = "embedded"

// load reads the configured bundle without activating it.
func (e *Engine) load() (*bundle.Bundle, string, error) {
	if e.opts.BundlePath == "" {
		b, err := EmbeddedBundle()
		return b, sourceEmbedded, err
	}
	b, err := LoadBundle(e.opts.BundlePath)
	return b, e.opts.BundlePath, err
}

// LoadBundle reads a bundle directory or .tar.gz file at path, skipping *_test.rego files.
func LoadBundle(p string) (*bundle.Bundle, error) {
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: bundle path %q does not exist", ErrRejected, p)
		}
		return nil, fmt.Errorf("%w: bundle path %q: %w", ErrRejected, p, err)
	}
	b, err := loader.NewFileLoader().
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		WithSkipBundleVerification(true).
		WithFilter(skipRegoTests).
		AsBundle(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return b, nil
}

// skipRegoTests is a loader filter (true = skip) that drops Rego test files:
// they belong to `opa test`, not to the policy that decides.
func skipRegoTests(_ string, info fs.FileInfo, _ int) bool {
	return !info.IsDir() && isRegoTest(info.Name())
}

func isRegoTest(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// EmbeddedBundle builds the default bundle from policies.FS (minus *_test.rego) and bundles.Default.
func EmbeddedBundle() (*bundle.Bundle, error) {
	return bundleFromFS(policies.FS, ".", bundles.Default, "default")
}

// bundleFromFS assembles a bundle from the *.rego files under regoDir of
// regoFS and the data.json and .manifest under dataDir of dataFS.
func bundleFromFS(regoFS fs.FS, regoDir string, dataFS fs.FS, dataDir string) (*bundle.Bundle, error) {
	b := &bundle.Bundle{Data: map[string]any{}}
	var names []string
	err := fs.WalkDir(regoFS, regoDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".rego") && !isRegoTest(p) {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: embedded policies: %w", ErrRejected, err)
	}
	sort.Strings(names)
	opts := ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}
	for _, name := range names {
		raw, err := fs.ReadFile(regoFS, name)
		if err != nil {
			return nil, fmt.Errorf("%w: embedded policies: %w", ErrRejected, err)
		}
		file := path.Join("policies", name)
		m, err := ast.ParseModuleWithOpts(file, string(raw), opts)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRejected, err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: file, Path: file, RelativePath: file, Raw: raw, Parsed: m})
	}

	dataFile := path.Join(dataDir, "data.json")
	raw, err := fs.ReadFile(dataFS, dataFile)
	if err != nil {
		return nil, fmt.Errorf("%w: embedded bundle data: %w", ErrRejected, err)
	}
	if err := util.UnmarshalJSON(raw, &b.Data); err != nil {
		return nil, fmt.Errorf("%w: bundles/%s: %w", ErrRejected, dataFile, err)
	}
	manifestFile := path.Join(dataDir, ".manifest")
	if raw, err := fs.ReadFile(dataFS, manifestFile); err == nil {
		if err := json.Unmarshal(raw, &b.Manifest); err != nil {
			return nil, fmt.Errorf("%w: bundles/%s: %w", ErrRejected, manifestFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: embedded bundle manifest: %w", ErrRejected, err)
	}
	return b, nil
}
