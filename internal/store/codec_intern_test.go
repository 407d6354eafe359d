package store

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestInternKeepsOneCopyAcrossCollections decodes the same names twice,
// with a collection in between, and checks that both decodings hold the
// very same bytes (one copy), while a name no row repeats stays usable.
func TestInternKeepsOneCopyAcrossCollections(t *testing.T) {
	if interned.size() >= maxInterned-4 {
		t.Skip("the process's intern table is full: nothing more is shared")
	}
	first, err := unmarshalStrings(`["editor","intern-test-role"]`)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	second, err := unmarshalStrings(`["editor","intern-test-role"]`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("decoded %q, then %q", first[i], second[i])
		}
		if unsafe.StringData(first[i]) != unsafe.StringData(second[i]) {
			t.Errorf("%q decoded twice is held twice: not interned", first[i])
		}
	}
	tp, err := unmarshalToolPolicy(ptrTo(`{"mode":"allow","tools":["intern-test-role"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(tp.Tools[0]) != unsafe.StringData(first[1]) || tp.Mode != "allow" {
		t.Errorf("tool policy names are not interned: %+v", tp)
	}
	// A value built at run time is interned by content, not by identity.
	built := strings.Repeat("e", 1) + "ditor"
	if got := intern(built); unsafe.StringData(got) != unsafe.StringData(first[0]) {
		t.Errorf("intern(%q) is not the canonical copy", built)
	}
}

func ptrTo(s string) *string { return &s }

// An intern table never holds more than its bound, nor a string longer than
// its longest: past either, a value comes back as it was given, unshared,
// and every value comes back equal to its input. Values already held stay
// shared after the table is full.
func TestInternTableIsBounded(t *testing.T) {
	tab := &internTable{max: 4, maxLen: 8}
	fresh := strings.Clone
	first := tab.intern(fresh("role-0"))
	for i := range 10 {
		in := fresh(fmt.Sprintf("role-%d", i))
		if got := tab.intern(in); got != in {
			t.Fatalf("intern(%q) = %q", in, got)
		}
	}
	if n := tab.size(); n != 4 {
		t.Fatalf("the table holds %d strings, want its bound, 4", n)
	}
	late := fresh("role-9")
	if got := tab.intern(late); unsafe.StringData(got) != unsafe.StringData(late) {
		t.Errorf("%q, added past the bound, came back shared", late)
	}
	if got := tab.intern(fresh("role-0")); unsafe.StringData(got) != unsafe.StringData(first) {
		t.Errorf("role-0, held before the table filled, is no longer shared")
	}
	small := &internTable{max: 10, maxLen: 8}
	long := fresh("longer-than-8")
	if got := small.intern(long); got != long || unsafe.StringData(got) != unsafe.StringData(long) || small.size() != 0 {
		t.Errorf("a string longer than maxLen was interned (table holds %d)", small.size())
	}
}
