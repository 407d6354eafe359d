package policy

import (
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
)

// nondeterministicCalls lists the builtins marked Nondeterministic (time.now_ns,
// rand.intn, http.send, ...) that the compiled policy calls, sorted. A policy
// that calls none decides the same input the same way every time, which lets
// callers memoise decisions per activation.
func nondeterministicCalls(c *ast.Compiler) []string {
	found := map[string]bool{}
	check := func(name string) {
		if bi, ok := ast.BuiltinMap[name]; ok && bi.Nondeterministic {
			found[name] = true
		}
	}
	for _, m := range c.Modules {
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if x.IsCall() {
				check(x.Operator().String())
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
				check(call[0].String())
			}
			return false
		})
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
