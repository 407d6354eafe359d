package httpapi

import "testing"

func TestParseIDAcceptsOnlyCanonicalDecimal(t *testing.T) {
	good := map[string]int64{"1": 1, "9": 9, "10": 10, "123456": 123456, "9223372036854775807": 1<<63 - 1}
	for s, want := range good {
		if got, ok := parseID(s); !ok || got != want {
			t.Errorf("parseID(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	bad := []string{"", "0", "00", "01", "+1", "-1", "-0", " 1", "1 ", "1.0", "1e0", "0x1", "1_000", "١", "９",
		"9223372036854775808", "99999999999999999999", "1\x00"}
	for _, s := range bad {
		if got, ok := parseID(s); ok {
			t.Errorf("parseID(%q) = %d, accepted", s, got)
		}
	}
	if n, ok := parseCount("0"); !ok || n != 0 {
		t.Errorf("parseCount(0) = %d, %v", n, ok)
	}
	for _, s := range []string{"00", "+0", "-0", "01"} {
		if _, ok := parseCount(s); ok {
			t.Errorf("parseCount(%q) accepted", s)
		}
	}
}

func TestCheckIDRefRefusesOnlyNonCanonicalIDs(t *testing.T) {
	for _, ok := range []string{"", "1", "42", "alpha", "1e0", "-1", "-01", "a01", "1.0", "user-7"} {
		if err := checkIDRef("agent", ok); err != nil {
			t.Errorf("checkIDRef(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"0", "01", "007", "+1", "+01", "99999999999999999999"} {
		err := checkIDRef("agent", bad)
		if err == nil {
			t.Errorf("checkIDRef(%q) accepted", bad)
			continue
		}
		if ae := err.(*apiError); ae.Status != 400 || ae.Code != "invalid_agent" || ae.Field != "agent" {
			t.Errorf("checkIDRef(%q) = %+v", bad, ae)
		}
	}
}
