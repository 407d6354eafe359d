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
	b, err := loadBundle(e.opts.BundlePath, e.opts.Verification)
	return b, e.opts.BundlePath, err
}

// LoadBundle reads a bundle directory or .tar.gz file at path, skipping *_test.rego files.
func LoadBundle(p string) (*bundle.Bundle, error) {
	return loadBundle(p, nil)
}

// loadBundle reads the bundle at p; with a verification configuration, its
// signatures are verified as OPA's bundle plugin verifies a file:// bundle.
func loadBundle(p string, verify *bundle.VerificationConfig) (*bundle.Bundle, error) {
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: bundle path %q does not exist", ErrRejected, p)
		}
		return nil, fmt.Errorf("%w: bundle path %q: %w", ErrRejected, p, err)
	}
	b, err := loader.NewFileLoader().
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		WithBundleVerificationConfig(verify).
		WithSkipBundleVerification(verify == nil).
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
	if err := mergeNestedData(b.Data, dataFS, dataDir); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
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

// mergeNestedData places every data.json below dataDir (not the root one) at
// its directory's path, as OPA's bundle reader and `opa test DIR` do: e.g.
// agentauthz/cases/data.json becomes data.agentauthz.cases. A path that is
// already defined is an error, never a silent overwrite.
func mergeNestedData(data map[string]any, dataFS fs.FS, dataDir string) error {
	return fs.WalkDir(dataFS, dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Base(p) != "data.json" || path.Dir(p) == path.Clean(dataDir) {
			return nil
		}
		rel := strings.TrimPrefix(path.Dir(p), path.Clean(dataDir)+"/")
		raw, err := fs.ReadFile(dataFS, p)
		if err != nil {
			return fmt.Errorf("embedded bundle data: %w", err)
		}
		var v any
		if err := util.UnmarshalJSON(raw, &v); err != nil {
			return fmt.Errorf("bundles/%s: %w", p, err)
		}
		keys := strings.Split(rel, "/")
		node := data
		for _, k := range keys[:len(keys)-1] {
			next, ok := node[k].(map[string]any)
			if !ok {
				if _, taken := node[k]; taken {
					return fmt.Errorf("bundles/%s: data.%s is already defined and not an object", p, strings.Join(keys, "."))
				}
				next = map[string]any{}
				node[k] = next
			}
			node = next
		}
		last := keys[len(keys)-1]
		if _, taken := node[last]; taken {
			return fmt.Errorf("bundles/%s: data.%s is already defined", p, strings.Join(keys, "."))
		}
		node[last] = v
		return nil
	})
}
