package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// requiredRules are the documents every bundle must define, with why.
var requiredRules = []struct {
	ref  ast.Ref
	what string
}{
	{ast.MustParseRef("data.agentauthz.main.decision"), "the decision every request asks for"},
	{ast.MustParseRef("data.agentauthz.validate.errors"), "the set of bundle data errors"},
}

// validateQuery lists what is wrong with the bundle's data.
var validateQuery = ast.MustParseBody("data.agentauthz.validate.errors")

// ActivateBundle compiles, validates and prepares b, evaluates its decision
// cases, then swaps it in as the active bundle; on error nothing changes.
func (e *Engine) ActivateBundle(ctx context.Context, b *bundle.Bundle, source string) error {
	e.mu.Lock()
	defer e.mu.Unlock()

	st, err := prepare(ctx, b, source, e.caps)
	if err != nil {
		e.rejections.Add(1)
		err = fmt.Errorf("%w: %s: %w", ErrRejected, source, err)
		e.noteLoad(err)
		attrs := []any{"source", source, "reason", err}
		if cur := e.cur.Load(); cur != nil {
			attrs = append(attrs, "serving_revision", cur.act.Revision)
		}
		e.log.Error("policy bundle rejected", attrs...)
		return err
	}
	e.gen++
	st.act.Generation = e.gen
	st.act.ActivatedAt = time.Now()
	e.cur.Store(st)
	e.noteLoad(nil)
	for _, f := range e.listeners {
		f(st.compiler, st.data)
	}
	attrs := []any{"revision", st.act.Revision, "generation", st.act.Generation,
		"source", source, "deterministic", st.act.Deterministic,
		"decision_cases", st.act.Cases, "cases_from_bundle", st.act.CasesFromBundle}
	if len(st.nondeterministic) > 0 {
		attrs = append(attrs, "nondeterministic_builtins", st.nondeterministic)
	}
	e.log.Info("policy bundle activated", attrs...)
	if !st.act.CasesFromBundle {
		e.log.Warn("policy bundle ships no decision cases (data.agentauthz.cases); only checked that it decides the default bundle's inputs",
			"revision", st.act.Revision, "source", source)
	} else if len(st.uncovered) > 0 {
		e.log.Warn("policy bundle's decision cases do not ask about every ability", "revision", st.act.Revision, "abilities", st.uncovered)
	}
	return nil
}

// prepare turns a bundle into a ready-to-serve state without touching the engine.
func prepare(ctx context.Context, b *bundle.Bundle, source string, caps *ast.Capabilities) (*state, error) {
	if b == nil {
		return nil, fmt.Errorf("no bundle")
	}
	caps, err := isolatedCapabilities(caps)
	if err != nil {
		return nil, err
	}
	modules := make(map[string]*ast.Module, len(b.Modules))
	for _, mf := range b.Modules {
		if mf.Parsed == nil {
			return nil, fmt.Errorf("module %s was not parsed", mf.Path)
		}
		modules[moduleName(mf)] = mf.Parsed
	}
	compiler := ast.NewCompiler().
		WithCapabilities(caps).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(false)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, compileError(compiler.Errors)
	}
	for _, r := range requiredRules {
		if len(compiler.GetRules(r.ref)) == 0 {
			return nil, fmt.Errorf("required rule %s (%s) is not defined", r.ref, r.what)
		}
	}

	data := b.Data
	if data == nil {
		data = map[string]any{}
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))

	if err := validate(ctx, compiler, store, caps); err != nil {
		return nil, err
	}
	act, err := describe(data)
	if err != nil {
		return nil, err
	}

	pq, err := rego.New(
		rego.ParsedQuery(decisionQuery),
		rego.Compiler(compiler),
		rego.Capabilities(caps),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", decisionQuery, err)
	}

	// A bundle is activated only after it decides: its decision cases (or,
	// without its own, the default inputs) must evaluate, be well formed and,
	// for its own cases, decide as expected.
	cases, err := casesFor(data)
	if err != nil {
		return nil, err
	}
	if err := cases.run(ctx, pq); err != nil {
		return nil, err
	}

	hash := contentHash(b)
	act.Revision = revision(b.Manifest.Revision, hash)
	act.Source = source
	act.Cases = len(cases.cases)
	act.CasesFromBundle = cases.own
	nondet := nondeterministicCalls(compiler)
	act.Deterministic = len(nondet) == 0
	return &state{act: act, decision: pq, hash: hash, compiler: compiler, data: data,
		nondeterministic: nondet, uncovered: cases.uncovered(act.Abilities)}, nil
}

// moduleName keys a module by the file it came from, so errors name that file.
func moduleName(mf bundle.ModuleFile) string {
	if mf.Parsed != nil && mf.Parsed.Package != nil && mf.Parsed.Package.Location != nil && mf.Parsed.Package.Location.File != "" {
		return mf.Parsed.Package.Location.File
	}
	if mf.Path != "" {
		return mf.Path
	}
	return mf.URL
}

// compileError keeps every compiler error with its file:line.
func compileError(errs ast.Errors) error {
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		lines = append(lines, e.Error()) // "file:row: code: message"
	}
	return fmt.Errorf("compile: %s", strings.Join(lines, "; "))
}

// validate evaluates data.agentauthz.validate.errors once and rejects a non-empty set.
func validate(ctx context.Context, compiler *ast.Compiler, store storage.Store, caps *ast.Capabilities) error {
	rs, err := rego.New(
		rego.ParsedQuery(validateQuery),
		rego.Compiler(compiler),
		rego.Capabilities(caps),
		rego.Store(store),
	).Eval(ctx)
	if err != nil {
		return fmt.Errorf("evaluating %s: %w", validateQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return fmt.Errorf("%s is undefined", validateQuery)
	}
	set, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return fmt.Errorf("%s is not a set (got %T)", validateQuery, rs[0].Expressions[0].Value)
	}
	if len(set) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(set))
	for _, v := range set {
		if s, ok := v.(string); ok {
			msgs = append(msgs, s)
		} else {
			msgs = append(msgs, fmt.Sprint(v))
		}
	}
	sort.Strings(msgs)
	return fmt.Errorf("bundle data failed validation: %s", strings.Join(msgs, "; "))
}

// describe reads the names Go needs for request validation from the config data.
func describe(data map[string]any) (Activation, error) {
	var act Activation
	cfg, _ := lookup(data, "agentauthz", "config").(map[string]any)
	if cfg == nil {
		return act, fmt.Errorf("data.agentauthz.config is not an object")
	}
	roles, ok := cfg["agent_roles"].(map[string]any)
	if !ok {
		return act, fmt.Errorf("data.agentauthz.config.agent_roles is not an object of role ranks")
	}
	act.AgentRoles = make(map[string]int, len(roles))
	for name, v := range roles {
		rank, ok := toInt(v)
		if !ok {
			return act, fmt.Errorf("data.agentauthz.config.agent_roles[%q] is %v, not an integer rank", name, v)
		}
		act.AgentRoles[name] = rank
	}
	act.UserRoles = keysOf(cfg["roles"])
	act.Abilities = keysOf(cfg["abilities"])
	act.Actions = keysOf(cfg["actions"])
	act.RouteHeaders = routeHeaders(cfg["routes"])
	return act, nil
}

func lookup(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// toInt accepts the integral numbers JSON decoding may produce.
func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			return 0, false
		}
		return int(i), true
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return 0, false
		}
		return int(n), true
	case int:
		return n, true
	case int64:
		return int(n), true
	}
	return 0, false
}

// contentHash digests the module sources (sorted by file) and the canonical data.
func contentHash(b *bundle.Bundle) string {
	h := sha256.New()
	mods := make([]bundle.ModuleFile, len(b.Modules))
	copy(mods, b.Modules)
	sort.Slice(mods, func(i, j int) bool { return hashName(mods[i]) < hashName(mods[j]) })
	for _, m := range mods {
		src := m.Raw
		if len(src) == 0 && m.Parsed != nil {
			src = []byte(m.Parsed.String())
		}
		fmt.Fprintf(h, "module %s %d\n", hashName(m), len(src))
		h.Write(src)
	}
	data, _ := json.Marshal(b.Data) // encoding/json sorts map keys: canonical
	fmt.Fprintf(h, "data %d\n", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// hashName names a module independently of where its bundle sits on disk,
// so the same content has the same revision as a directory or a tarball.
func hashName(mf bundle.ModuleFile) string {
	name := mf.RelativePath
	if name == "" {
		name = mf.Path
	}
	return strings.TrimPrefix(name, "/")
}

// revision joins the manifest revision and a short content hash.
func revision(manifest, hash string) string {
	short := hash[:12]
	if manifest == "" {
		return short
	}
	return manifest + "+" + short
}

// routeHeaders lists the distinct tool_header names of a route table (validated
// beforehand by data.agentauthz.validate), lower-cased and sorted.
func routeHeaders(v any) []string {
	routes, _ := v.([]any)
	seen := map[string]bool{}
	out := []string{}
	for _, r := range routes {
		m, _ := r.(map[string]any)
		if h, ok := m["tool_header"].(string); ok && !seen[strings.ToLower(h)] {
			seen[strings.ToLower(h)] = true
			out = append(out, strings.ToLower(h))
		}
	}
	sort.Strings(out)
	return out
}
