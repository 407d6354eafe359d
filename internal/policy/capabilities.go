package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/types"
)

// restrictedBuiltins are the built-ins a bundle may call only when the
// operator allows them (Options.AllowBuiltins): they reach outside the
// process, so a bundle that calls them could send the decision input
// (principals, owners, grants) elsewhere or read the process' environment,
// configuration or files. Pure built-ins (net.cidr_*, crypto, JWT decoding)
// and the merely non-deterministic ones (time.*, rand.*: they only switch
// the decision memo off) stay available.
//
// The JSON schema built-ins are here because a schema's "$ref" is fetched:
// an http(s) ref only from the hosts of Options.AllowNet, but a file:// ref
// from the local file system whatever allow_net says (OPA 1.22's schema
// loader does not gate it). Every other built-in of this OPA version was
// checked: none opens a connection or a file (http.send's TLS settings
// read files and environment variables, inside http.send).
var restrictedBuiltins = []string{
	"http.send",          // any network request; with TLS settings, files and environment variables
	"json.match_schema",  // fetches a schema's $ref: file:// always, http(s) from allowed hosts
	"json.verify_schema", // the same
	"net.lookup_ip_addr", // DNS queries
	"opa.runtime",        // environment variables and the OPA configuration
}

// RestrictedBuiltins lists the built-ins refused at activation unless allowed, sorted.
func RestrictedBuiltins() []string { return slices.Clone(restrictedBuiltins) }

// checkAllowBuiltins refuses an allowance for a name that is not restricted:
// a typo must not pass silently as an allowance that does nothing.
func checkAllowBuiltins(allow []string) error {
	for _, name := range allow {
		if !slices.Contains(restrictedBuiltins, name) {
			return fmt.Errorf("allow_builtins: %q is not a restricted built-in (restricted: %s)", name, strings.Join(restrictedBuiltins, ", "))
		}
	}
	return nil
}

// capabilities are this OPA version's capabilities without the restricted
// built-ins that allow does not name (the compiler then refuses a call to
// one with OPA's own error, "undefined function http.send"), and with
// allow_net set to allowNet: no host at all unless the operator names some.
// OPA reads a nil allow_net as "every host", so it is never nil here.
func capabilities(allow, allowNet []string) *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	kept := make([]*ast.Builtin, 0, len(caps.Builtins))
	for _, bi := range caps.Builtins {
		if !slices.Contains(restrictedBuiltins, bi.Name) || slices.Contains(allow, bi.Name) {
			kept = append(kept, bi)
		}
	}
	caps.Builtins = kept
	caps.AllowNet = append([]string{}, allowNet...)
	return caps
}

// isolatedCapabilities returns caps with a private copy of every built-in's
// type declaration, for one activation's compiler. OPA's type checker gives
// a call's variables the declared types themselves, a rule takes its type
// from them, and when a second definition of the rule is checked,
// ast.mergeTypes (OPA 1.22) widens in place the dynamic property of an
// object it finds in that type: a write into the built-in's declaration.
// Here the two `decision := object.union(...)` definitions of main.rego
// write into object.union's declared result (the same value, any for any,
// but a write). Every capabilities value of this OPA version points at the
// same declarations, ast.Builtins', so two activations at once (two engines
// in one process, as the tests start them) wrote and read the same memory,
// which the race detector reported. The copy is made from pristineDecls,
// not from the shared declarations, so a compiler elsewhere in the process
// on OPA's default capabilities, writing into those, cannot race with it
// either. The other fields of a built-in are copied as they are: the
// compiler only reads them.
func isolatedCapabilities(caps *ast.Capabilities) (*ast.Capabilities, error) {
	return isolateFrom(caps, pristineDecls)
}

// isolateFrom is isolatedCapabilities copying each declaration from its
// entry in pristine (the shared declaration itself where it has none).
func isolateFrom(caps *ast.Capabilities, pristine map[*types.Function]*types.Function) (*ast.Capabilities, error) {
	c := *caps
	c.Builtins = make([]*ast.Builtin, len(caps.Builtins))
	for i, bi := range caps.Builtins {
		cp := *bi
		if bi.Decl != nil {
			src := bi.Decl
			if p := pristine[src]; p != nil {
				src = p
			}
			decl, err := copyDecl(src)
			if err != nil {
				return nil, fmt.Errorf("copying the declaration of built-in %s: %w", bi.Name, err)
			}
			cp.Decl = decl
		}
		c.Builtins[i] = &cp
	}
	return &c, nil
}

// pristineDecls maps each of this OPA version's shared built-in
// declarations to a private copy made at package initialisation, before any
// goroutine and so before any compiler could write into the shared ones.
// Nothing writes to these copies (they are never given to a compiler);
// isolatedCapabilities copies each activation's declarations from them. A
// declaration copyDecl cannot copy is left out, and its activation then
// fails copying the shared one.
var pristineDecls = func() map[*types.Function]*types.Function {
	m := make(map[*types.Function]*types.Function, len(ast.Builtins))
	for _, bi := range ast.Builtins {
		if bi.Decl == nil {
			continue
		}
		if c, err := copyDecl(bi.Decl); err == nil {
			m[bi.Decl] = c
		}
	}
	return m
}()

// copyDecl deep-copies a built-in's declaration with the types package's
// constructors: 80 µs for all of them, where a JSON round trip (what OPA's
// capabilities files do) takes 9 ms, a fifth of an activation, which every
// engine the tests start would pay (BenchmarkIsolatedCapabilities). A kind
// of type it does not know (a later OPA's) is an error, so the activation
// fails rather than share it; TestCopyDeclKnowsEveryKindThisOPADeclares
// names it on an upgrade.
func copyDecl(f *types.Function) (*types.Function, error) {
	c, ok := copyType(f)
	if !ok {
		return nil, fmt.Errorf("%v holds a kind of type the copy does not know", f)
	}
	return c.(*types.Function), nil
}

// copyType deep-copies t; ok is false if t holds a kind it does not know.
// The scalar kinds are empty structs held by value: nothing to share.
func copyType(t types.Type) (_ types.Type, ok bool) {
	switch t := t.(type) {
	case nil:
		return nil, true
	case types.Null, types.Boolean, types.Number, types.String:
		return t, true
	case *types.NamedType:
		inner, ok := copyType(t.Type)
		return &types.NamedType{Name: t.Name, Descr: t.Descr, Type: inner}, ok
	case types.Any:
		out := make(types.Any, len(t))
		for i, x := range t {
			if out[i], ok = copyType(x); !ok {
				return nil, false
			}
		}
		return out, true
	case *types.Array:
		static := make([]types.Type, t.Len())
		for i := range static {
			if static[i], ok = copyType(t.Select(i)); !ok {
				return nil, false
			}
		}
		dynamic, ok := copyType(t.Dynamic())
		return types.NewArray(static, dynamic), ok
	case *types.Set:
		of, ok := copyType(t.Of())
		return types.NewSet(of), ok
	case *types.Object:
		var static []*types.StaticProperty
		for _, p := range t.StaticProperties() {
			v, ok := copyType(p.Value)
			if !ok {
				return nil, false
			}
			static = append(static, types.NewStaticProperty(p.Key, v))
		}
		var dynamic *types.DynamicProperty
		if d := t.DynamicProperties(); d != nil {
			k, okK := copyType(d.Key)
			v, okV := copyType(d.Value)
			if !okK || !okV {
				return nil, false
			}
			dynamic = types.NewDynamicProperty(k, v)
		}
		return types.NewObject(static, dynamic), true
	case *types.Function:
		named := t.NamedFuncArgs()
		args := make([]types.Type, len(named.Args))
		for i, a := range named.Args {
			if args[i], ok = copyType(a); !ok {
				return nil, false
			}
		}
		result, okR := copyType(t.NamedResult())
		variadic, okV := copyType(named.Variadic)
		if !okR || !okV {
			return nil, false
		}
		if variadic != nil { // then result is nil: OPA builds no other variadic function
			return types.NewVariadicFunction(args, variadic, result), true
		}
		return types.NewFunction(args, result), true
	}
	return nil, false
}
