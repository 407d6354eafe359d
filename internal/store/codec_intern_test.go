package store

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestInternKeepsOneCopyAcrossCollections decodes the same names twice,
// with a collection in between, and checks that both decodings hold the
// very same bytes (one copy), while a name no row repeats stays usable.
func TestInternKeepsOneCopyAcrossCollections(t *testing.T) {
	if internedCount.Load() >= maxInterned-4 {
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
