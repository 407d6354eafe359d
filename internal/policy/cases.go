package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/agentauthz/agentauthz/bundles"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
)

// A bundle is activated only after it decides. Its decision cases are bundle
// data at data.agentauthz.cases: an object from case name to
//
//	{"input": {...an input document...},
//	 "expect": {"allow": bool, "denied_by": [...optional...]}}
//
// The default bundle keeps its cases in bundles/default/agentauthz/cases/data.json,
// which OPA (bundle mode, `opa test DIR`, `opa eval -d DIR`) and the engine
// all load at data.agentauthz.cases. Which cases gate a candidate:
//
//   - the bundle's own cases when it has any: every one must evaluate to a
//     well-formed decision with the expected allow, and the expected
//     denied_by (compared as a set) when the case gives one;
//   - otherwise the default bundle's inputs, with no expectation: a custom
//     bundle may decide differently (its data is its own), but its decision
//     must evaluate without error to a well-formed decision for each.
//
// Either way an evaluation error (e.g. eval_conflict_error from two complete
// definitions of decision that disagree), an undefined or a malformed
// decision rejects the candidate, naming the case.

// casesDataPath is where a bundle keeps its decision cases.
var casesDataPath = []string{"agentauthz", "cases"}

// defaultCasesFile is the default bundle's cases file inside bundles.Default.
const defaultCasesFile = "default/agentauthz/cases/data.json"

// decisionCase is one golden input and what it must decide.
type decisionCase struct {
	name  string
	input ast.Value
	// ability is input.ability, for coverage reporting ("" when not a string).
	ability string
	allow   bool
	// deniedBy is compared (as a sorted set) only when checkDeniedBy is set.
	deniedBy      []string
	checkDeniedBy bool
}

// caseSet is what gates one candidate bundle.
type caseSet struct {
	cases []decisionCase
	// own is true when the cases came from the bundle itself: only then are
	// the expectations compared.
	own bool
}

// defaultCases parses the embedded default cases once.
var defaultCases = sync.OnceValues(func() ([]decisionCase, error) {
	raw, err := bundles.Default.ReadFile(defaultCasesFile)
	if err != nil {
		return nil, fmt.Errorf("embedded decision cases: %w", err)
	}
	var v any
	if err := util.UnmarshalJSON(raw, &v); err != nil {
		return nil, fmt.Errorf("bundles/%s: %w", defaultCasesFile, err)
	}
	cs, err := parseCases(v)
	if err != nil {
		return nil, fmt.Errorf("bundles/%s: %w", defaultCasesFile, err)
	}
	return cs, nil
})

// casesFor picks the cases that gate a bundle with this data.
func casesFor(data map[string]any) (caseSet, error) {
	v := lookup(data, casesDataPath...)
	if m, ok := v.(map[string]any); v != nil && (!ok || len(m) > 0) {
		cs, err := parseCases(v)
		if err != nil {
			return caseSet{}, fmt.Errorf("data.%s: %w", strings.Join(casesDataPath, "."), err)
		}
		return caseSet{cases: cs, own: true}, nil
	}
	cs, err := defaultCases()
	if err != nil {
		return caseSet{}, err
	}
	return caseSet{cases: cs}, nil
}

// parseCases reads a cases object, sorted by name.
func parseCases(v any) ([]decisionCase, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decision cases are %s, not an object of named cases", typeName(v))
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]decisionCase, 0, len(names))
	for _, name := range names {
		c, err := parseCase(name, m[name])
		if err != nil {
			return nil, fmt.Errorf("case %q: %w", name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCase(name string, v any) (decisionCase, error) {
	c := decisionCase{name: name}
	obj, ok := v.(map[string]any)
	if !ok {
		return c, fmt.Errorf("is %s, not an object with input and expect", typeName(v))
	}
	in, ok := obj["input"].(map[string]any)
	if !ok {
		return c, fmt.Errorf("input is %s, not an object", typeName(obj["input"]))
	}
	c.ability, _ = in["ability"].(string)
	val, err := ast.InterfaceToValue(in)
	if err != nil {
		return c, fmt.Errorf("input: %w", err)
	}
	c.input = val
	exp, ok := obj["expect"].(map[string]any)
	if !ok {
		return c, fmt.Errorf("expect is %s, not an object", typeName(obj["expect"]))
	}
	if c.allow, ok = exp["allow"].(bool); !ok {
		return c, fmt.Errorf("expect.allow is %s, not a boolean", typeName(exp["allow"]))
	}
	if raw, given := exp["denied_by"]; given && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return c, fmt.Errorf("expect.denied_by is %s, not an array of strings", typeName(raw))
		}
		c.checkDeniedBy = true
		c.deniedBy = make([]string, 0, len(list))
		for i, x := range list {
			s, ok := x.(string)
			if !ok {
				return c, fmt.Errorf("expect.denied_by[%d] is %s, not a string", i, typeName(x))
			}
			c.deniedBy = append(c.deniedBy, s)
		}
		sort.Strings(c.deniedBy)
		if c.allow && len(c.deniedBy) > 0 {
			return c, fmt.Errorf("expect.allow is true but expect.denied_by is %v", c.deniedBy)
		}
	}
	return c, nil
}

// maxCaseFailures bounds how many failing cases one rejection names: the
// first with its error, the others by name.
const maxCaseFailures = 6

// run evaluates every case with the candidate's prepared decision query.
func (s caseSet) run(ctx context.Context, pq rego.PreparedEvalQuery) error {
	var first error
	var others []string
	n := 0
	for _, c := range s.cases {
		if err := s.check(ctx, pq, c); err != nil {
			n++
			switch {
			case first == nil:
				first = fmt.Errorf("decision case %q: %w", c.name, err)
			case len(others) < maxCaseFailures-1:
				others = append(others, strconv.Quote(c.name))
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("decision cases: %w", err)
		}
	}
	if n == 0 {
		return nil
	}
	failures := []string{first.Error()}
	if len(others) > 0 {
		more := "also failing: " + strings.Join(others, ", ")
		if rest := n - 1 - len(others); rest > 0 {
			more += fmt.Sprintf(" and %d more", rest)
		}
		failures = append(failures, more)
	}
	if !s.own {
		return fmt.Errorf("%d of the default bundle's %d decision inputs failed (the bundle ships no data.agentauthz.cases, so it must only decide them): %s",
			n, len(s.cases), strings.Join(failures, "; "))
	}
	return fmt.Errorf("%d of the bundle's %d decision cases failed: %s", n, len(s.cases), strings.Join(failures, "; "))
}

// check evaluates one case; the error says what went wrong, never the input.
func (s caseSet) check(ctx context.Context, pq rego.PreparedEvalQuery, c decisionCase) error {
	rs, err := evalQuery(ctx, pq, c.input)
	if err != nil {
		return fmt.Errorf("evaluation error: %w", err)
	}
	d, err := decisionFrom(rs)
	if err != nil {
		if errors.Is(err, ErrUndefined) {
			return errors.New("the decision is undefined")
		}
		return err
	}
	if !s.own {
		return nil
	}
	got := slices.Clone(d.DeniedBy)
	sort.Strings(got)
	if d.Allow != c.allow || (c.checkDeniedBy && !slices.Equal(got, c.deniedBy)) {
		want := fmt.Sprintf("allow=%t", c.allow)
		if c.checkDeniedBy {
			want += fmt.Sprintf(" denied_by=%v", c.deniedBy)
		}
		return fmt.Errorf("decided allow=%t denied_by=%v, want %s", d.Allow, got, want)
	}
	return nil
}

// uncovered lists the abilities of the bundle's table that none of its own
// cases asks about (nil for the default inputs, which gate nothing by ability).
func (s caseSet) uncovered(abilities []string) []string {
	if !s.own {
		return nil
	}
	asked := make(map[string]bool, len(s.cases))
	for _, c := range s.cases {
		asked[c.ability] = true
	}
	var out []string
	for _, a := range abilities {
		if !asked[a] {
			out = append(out, a)
		}
	}
	return out
}
