package policy

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/types"
)

// Activations are independent: the compile of one never writes to memory
// another reads. OPA's type checker can write into a built-in's declared
// type (ast.mergeTypes; see isolatedCapabilities), so two compilers that
// share this OPA version's declarations race (the race detector caught it
// between two tests' engines). Each activation compiles against its own
// copy (isolatedCapabilities); this test prepares the default bundle on
// several goroutines at once, from one capabilities value as engines do, so
// that `go test -race` can see their compilers share any. It is timing
// dependent (without the copy it failed in about half of the runs here, the
// detector keeping few accesses per address); the next test checks the copy
// itself, whatever the timing.
func TestConcurrentActivationsShareNoTypes(t *testing.T) {
	b, err := EmbeddedBundle()
	if err != nil {
		t.Fatal(err)
	}
	caps := capabilities(nil, nil)
	const workers, rounds = 4, 3
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range rounds {
				if _, err := prepare(context.Background(), b, "test", caps); err != nil {
					errs <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The copy isolatedCapabilities makes shares no memory with the
// declarations it copies: no pointer, no slice's backing array reachable
// from a copied declaration is reachable from ast.Builtins' or from the
// pristine copies it is made from, and every shared declaration has a
// pristine copy (so no activation copies from memory a compiler writes).
func TestIsolatedCapabilitiesShareNoDeclarationMemory(t *testing.T) {
	caps := capabilities(nil, nil)
	iso, err := isolatedCapabilities(caps)
	if err != nil {
		t.Fatal(err)
	}
	if len(iso.Builtins) != len(caps.Builtins) {
		t.Fatalf("%d built-ins copied, want %d", len(iso.Builtins), len(caps.Builtins))
	}
	shared := map[uintptr]bool{} // OPA's declarations, then the pristine copies
	for _, bi := range ast.Builtins {
		addresses(reflect.ValueOf(bi.Decl), shared)
	}
	for _, bi := range ast.Builtins {
		if bi.Decl == nil {
			continue
		}
		p := pristineDecls[bi.Decl]
		if p == nil {
			t.Errorf("%s: no pristine copy of its declaration", bi.Name)
			continue
		}
		if a, ok := sharedAddress(p, shared); ok {
			t.Errorf("%s: the pristine copy shares memory at %#x with ast.Builtins", bi.Name, a)
		}
		if got, want := declJSON(t, p), declJSON(t, bi.Decl); got != want {
			t.Errorf("%s: pristine declaration %s, want %s", bi.Name, got, want)
		}
	}
	for _, p := range pristineDecls {
		addresses(reflect.ValueOf(p), shared)
	}
	for i, bi := range iso.Builtins {
		orig := caps.Builtins[i]
		if bi == orig || bi.Name != orig.Name || bi.CanSkipBctx != orig.CanSkipBctx || bi.Nondeterministic != orig.Nondeterministic {
			t.Errorf("built-in %d: copy %+v of %+v", i, bi, orig)
			continue
		}
		if got, want := declJSON(t, bi.Decl), declJSON(t, orig.Decl); got != want {
			t.Errorf("%s: declaration %s, want %s", bi.Name, got, want)
		}
		if a, ok := sharedAddress(bi.Decl, shared); ok {
			t.Errorf("%s: the copied declaration shares memory at %#x with ast.Builtins or the pristine copies", bi.Name, a)
		}
	}
}

// sharedAddress reports an address reachable from f that is in shared.
func sharedAddress(f *types.Function, shared map[uintptr]bool) (uintptr, bool) {
	mine := map[uintptr]bool{}
	addresses(reflect.ValueOf(f), mine)
	for a := range mine {
		if shared[a] {
			return a, true
		}
	}
	return 0, false
}

// Declarations are copied from the pristine copies, never read from the
// shared ones a compiler may be writing to: given a pristine map whose entry
// for object.union differs from OPA's declaration, the copy follows the map.
func TestIsolatedCapabilitiesCopyFromPristine(t *testing.T) {
	caps := capabilities(nil, nil)
	var shared *types.Function
	for _, bi := range caps.Builtins {
		if bi.Name == ast.ObjectUnion.Name {
			shared = bi.Decl
		}
	}
	if shared == nil {
		t.Fatal("object.union is not in the capabilities")
	}
	marked := types.NewFunction(types.Args(types.Named("marked", types.S)), types.N)
	iso, err := isolateFrom(caps, map[*types.Function]*types.Function{shared: marked})
	if err != nil {
		t.Fatal(err)
	}
	for _, bi := range iso.Builtins {
		if bi.Name == ast.ObjectUnion.Name {
			if got, want := declJSON(t, bi.Decl), declJSON(t, marked); got != want {
				t.Errorf("object.union copied as %s, want the pristine entry %s", got, want)
			}
			if bi.Decl == marked {
				t.Error("object.union's copy is the pristine entry itself, not a copy")
			}
		}
	}
}

// declJSON is a declaration with its arguments' names and descriptions,
// which its String leaves out.
func declJSON(t *testing.T, f *types.Function) string {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every declaration of this OPA version is a kind of type copyType knows,
// and one it does not know (here a recursive type, which no built-in
// declares) is an error, never a shared or partial copy.
func TestCopyDeclKnowsEveryKindThisOPADeclares(t *testing.T) {
	for _, bi := range ast.Builtins {
		if bi.Decl == nil {
			continue
		}
		if _, err := copyDecl(bi.Decl); err != nil {
			t.Errorf("%s: %v", bi.Name, err)
		}
	}
	obj := types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))
	f := types.NewFunction([]types.Type{types.Named("x", types.NewRecursive("#/x", obj))}, types.B)
	if c, err := copyDecl(f); err == nil {
		t.Errorf("copyDecl(%v) = %v, want an error", f, c)
	}
}

// addresses adds to seen every address of non-empty memory reachable from
// v through pointers, slices and interfaces, unexported fields included.
func addresses(v reflect.Value, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || v.Type().Elem().Size() == 0 {
			return
		}
		if seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		addresses(v.Elem(), seen)
	case reflect.Slice:
		if v.Len() > 0 && v.Type().Elem().Size() > 0 {
			seen[v.Pointer()] = true
		}
		for i := range v.Len() {
			addresses(v.Index(i), seen)
		}
	case reflect.Interface:
		if !v.IsNil() {
			addresses(v.Elem(), seen)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			addresses(v.Field(i), seen)
		}
	}
}

// BenchmarkIsolatedCapabilities is what the private copy of the built-in
// declarations adds to each activation.
func BenchmarkIsolatedCapabilities(b *testing.B) {
	caps := capabilities(nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := isolatedCapabilities(caps); err != nil {
			b.Fatal(err)
		}
	}
}
