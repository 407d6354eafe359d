package token

import (
	"errors"
	"hash/crc32"
	"testing"
)

// FuzzParse checks that Parse never panics, that everything it accepts is
// exactly the token it describes (re-formatting reproduces the input), that
// the checksum really verifies, and that its errors never echo the input.
func FuzzParse(f *testing.F) {
	f.Add(mint(DefaultPrefix, "bot", random56))
	f.Add(mint(DefaultPrefix, "a_b-c", random56))
	f.Add("datamachine__" + random56 + "00000000")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		if checksum(raw) != crc32.ChecksumIEEE([]byte(raw)) {
			t.Fatalf("checksum(%q) differs from crc32.ChecksumIEEE", raw)
		}
		p, err := Parse(DefaultPrefix, raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("Parse error %v is neither ErrMalformed nor ErrChecksum", err)
			}
			if len(raw) >= 8 && contains(err.Error(), raw) {
				t.Fatalf("error %q echoes the input", err)
			}
			return
		}
		if p.Prefix != DefaultPrefix || ValidSlug(p.Slug) != nil {
			t.Fatalf("accepted %+v with an invalid part", p)
		}
		secret := raw[len(raw)-SecretLen:]
		if again := p.Prefix + "_" + p.Slug + "_" + secret; again != raw {
			t.Fatalf("re-formatting gives %q, input was %q", again, raw)
		}
		body := raw[:len(raw)-8]
		if hex8(crc32.ChecksumIEEE([]byte(body))) != raw[len(raw)-8:] {
			t.Fatalf("accepted %q whose checksum does not verify", raw)
		}
		if Hint(raw) == "" {
			t.Fatalf("accepted %q but Hint is empty", raw)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
