package token

import (
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
)

// mint builds a token with a valid checksum from chosen parts, so tests can
// craft tokens that are well-formed in every way but one.
func mint(prefix, slug, random56 string) string {
	body := prefix + "_" + slug + "_" + random56
	return string(appendChecksum([]byte(body)))
}

const random56 = "0123456789abcdef0123456789abcdef0123456789abcdef01234567"

func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

func TestParse(t *testing.T) {
	valid := mint(DefaultPrefix, "chubes-bot", random56)
	underscored := mint(DefaultPrefix, "my_agent_v2", random56)
	tests := []struct {
		name     string
		prefix   string
		raw      string
		wantSlug string
		wantErr  error
	}{
		{"valid token parses", DefaultPrefix, valid, "chubes-bot", nil},
		{"slug with underscores parses", DefaultPrefix, underscored, "my_agent_v2", nil},
		{"slug of only underscores parses", DefaultPrefix, mint(DefaultPrefix, "__", random56), "__", nil},
		{"custom prefix parses", "acme2", mint("acme2", "bot", random56), "bot", nil},
		{"64-char slug parses", DefaultPrefix, mint(DefaultPrefix, strings.Repeat("a", 64), random56), strings.Repeat("a", 64), nil},
		{"wrong prefix is malformed", "other", valid, "", ErrMalformed},
		{"prefix without separator is malformed", DefaultPrefix, "datamachinex" + valid[len(DefaultPrefix):], "", ErrMalformed},
		{"invalid configured prefix is malformed", "Bad_", valid, "", ErrMalformed},
		{"uppercase hex is malformed", DefaultPrefix, valid[:len(valid)-64] + strings.ToUpper(valid[len(valid)-64:]), "", ErrMalformed},
		{"short hex is malformed", DefaultPrefix, valid[:len(valid)-1], "", ErrMalformed},
		{"long hex is malformed", DefaultPrefix, valid + "0", "", ErrMalformed},
		{"non-hex character is malformed", DefaultPrefix, valid[:len(valid)-10] + "g" + valid[len(valid)-9:], "", ErrMalformed},
		{"bad checksum is rejected", DefaultPrefix, valid[:len(valid)-8] + "00000000", "", ErrChecksum},
		{"one flipped random char fails the checksum", DefaultPrefix, flip(valid, len(valid)-30), "", ErrChecksum},
		{"one flipped checksum char fails the checksum", DefaultPrefix, flip(valid, len(valid)-1), "", ErrChecksum},
		{"re-slugged token fails the checksum", DefaultPrefix, strings.Replace(valid, "chubes-bot", "other-bot", 1), "", ErrChecksum},
		{"empty slug is malformed", DefaultPrefix, DefaultPrefix + "__" + valid[len(valid)-64:], "", ErrMalformed},
		{"uppercase slug is malformed", DefaultPrefix, mint(DefaultPrefix, "Bot", random56), "", ErrMalformed},
		{"65-char slug is malformed", DefaultPrefix, mint(DefaultPrefix, strings.Repeat("a", 65), random56), "", ErrMalformed},
		{"missing separator before hex is malformed", DefaultPrefix, DefaultPrefix + "_botx" + valid[len(valid)-64:], "", ErrMalformed},
		{"overlong input is malformed", DefaultPrefix, valid + strings.Repeat("a", 300), "", ErrMalformed},
		{"empty string is malformed", DefaultPrefix, "", "", ErrMalformed},
		{"prefix only is malformed", DefaultPrefix, DefaultPrefix + "_", "", ErrMalformed},
		{"whitespace around is malformed", DefaultPrefix, " " + valid, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.prefix, tt.raw)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: unexpected error %v", err)
				}
				if p.Slug != tt.wantSlug || p.Prefix != tt.prefix {
					t.Fatalf("Parse = %+v, want prefix %q slug %q", p, tt.prefix, tt.wantSlug)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if p != (Parsed{}) {
				t.Fatalf("Parse returned %+v alongside an error", p)
			}
			assertNoLeak(t, err, tt.raw)
		})
	}
}

// assertNoLeak fails if an error message carries the raw token or its secret.
func assertNoLeak(t *testing.T, err error, raw string) {
	t.Helper()
	msg := err.Error()
	if len(raw) >= SecretLen && strings.Contains(msg, raw[len(raw)-SecretLen:]) {
		t.Fatalf("error %q leaks the secret", msg)
	}
	if raw != "" && strings.Contains(msg, raw) {
		t.Fatalf("error %q leaks the raw token", msg)
	}
	for i := 0; i+12 <= len(raw); i++ {
		if strings.Contains(msg, raw[i:i+12]) && !strings.Contains(DefaultPrefix+"_", raw[i:i+12]) {
			t.Fatalf("error %q repeats input %q", msg, raw[i:i+12])
		}
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		name, prefix string
		ok           bool
	}{
		{"default prefix", DefaultPrefix, true},
		{"single letter", "a", true},
		{"letters and digits", "dm2", true},
		{"32 characters", "a" + strings.Repeat("0", 31), true},
		{"empty", "", false},
		{"33 characters", "a" + strings.Repeat("0", 32), false},
		{"leading digit", "2dm", false},
		{"underscore would make parsing ambiguous", "data_machine", false},
		{"uppercase", "Datamachine", false},
		{"dash", "data-machine", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidPrefix(tt.prefix)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidPrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
			}
			var fe *FormatError
			if err != nil && (!errors.As(err, &fe) || fe.Part != "prefix" || !errors.Is(err, ErrMalformed)) {
				t.Fatalf("ValidPrefix(%q) error %#v is not a prefix FormatError", tt.prefix, err)
			}
		})
	}
}

func TestValidSlug(t *testing.T) {
	tests := []struct {
		name, slug string
		ok         bool
	}{
		{"simple", "bot", true},
		{"underscores and dashes", "my_bot-2", true},
		{"64 characters", strings.Repeat("x", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("x", 65), false},
		{"uppercase", "Bot", false},
		{"space", "my bot", false},
		{"dot", "my.bot", false},
		{"non-ascii", "bötte", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidSlug(tt.slug)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidSlug(%q) = %v, want ok=%v", tt.slug, err, tt.ok)
			}
			var fe *FormatError
			if err != nil && (!errors.As(err, &fe) || fe.Part != "slug") {
				t.Fatalf("ValidSlug(%q) error %#v is not a slug FormatError", tt.slug, err)
			}
		})
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	if _, err := Generate("bad_prefix", "bot"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Generate with bad prefix: err = %v, want ErrMalformed", err)
	}
	if _, err := Generate(DefaultPrefix, "Bad Slug"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Generate with bad slug: err = %v, want ErrMalformed", err)
	}
}

const slugAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-"

func randomSlug(r *rand.Rand) string {
	b := make([]byte, 1+r.IntN(MaxSlugLen))
	for i := range b {
		b[i] = slugAlphabet[r.IntN(len(slugAlphabet))]
	}
	return string(b)
}

func TestGenerateParseRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := make(map[string]bool, 1000)
	hashes := make(map[string]bool, 1000)
	for i := 0; i < 1000; i++ {
		prefix := DefaultPrefix
		if i%2 == 1 {
			prefix = "dm"
		}
		slug := randomSlug(r)
		raw, err := Generate(prefix, slug)
		if err != nil {
			t.Fatalf("Generate(%q, %q): %v", prefix, slug, err)
		}
		if len(raw) != len(prefix)+1+len(slug)+1+SecretLen {
			t.Fatalf("Generate(%q, %q) has length %d", prefix, slug, len(raw))
		}
		p, err := Parse(prefix, raw)
		if err != nil {
			t.Fatalf("Parse(Generate(%q, %q)): %v", prefix, slug, err)
		}
		if p != (Parsed{Prefix: prefix, Slug: slug}) {
			t.Fatalf("round trip: got %+v, want prefix %q slug %q", p, prefix, slug)
		}
		if !Claims(prefix, raw) {
			t.Fatalf("Claims(%q, generated) = false", prefix)
		}
		secret := raw[len(raw)-SecretLen:]
		if seen[secret] {
			t.Fatalf("duplicate secret after %d tokens", i)
		}
		seen[secret] = true
		h := Hash(raw)
		if hashes[h] {
			t.Fatalf("duplicate hash after %d tokens", i)
		}
		hashes[h] = true
	}
}

func TestClaims(t *testing.T) {
	tests := []struct {
		name, prefix, s string
		want            bool
	}{
		{"our prefix", DefaultPrefix, "datamachine_anything", true},
		{"our prefix, garbage after", DefaultPrefix, "datamachine_", true},
		{"other prefix", DefaultPrefix, "ghp_abc", false},
		{"prefix without separator", DefaultPrefix, "datamachinex_abc", false},
		{"bare prefix", DefaultPrefix, "datamachine", false},
		{"shorter than prefix", DefaultPrefix, "data", false},
		{"case matters", DefaultPrefix, "DataMachine_abc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Claims(tt.prefix, tt.s); got != tt.want {
				t.Fatalf("Claims(%q, %q) = %v, want %v", tt.prefix, tt.s, got, tt.want)
			}
		})
	}
}

func TestHash(t *testing.T) {
	// SHA-256("abc"), the FIPS 180-2 test vector.
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := Hash("abc"); got != abc {
		t.Fatalf("Hash(abc) = %s, want %s", got, abc)
	}
	if !EqualHash(Hash("abc"), abc) {
		t.Fatal("EqualHash on equal hashes = false")
	}
	if EqualHash(Hash("abd"), abc) {
		t.Fatal("EqualHash on different hashes = true")
	}
	if EqualHash(abc[:10], abc) {
		t.Fatal("EqualHash on a prefix = true")
	}
}

func TestHint(t *testing.T) {
	raw := mint(DefaultPrefix, "my_bot", random56)
	if got, want := Hint(raw), "datamachine_my_bot_012345…"; got != want {
		t.Fatalf("Hint = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "datamachine_bot", "x" + strings.Repeat("a", 64), raw + strings.Repeat("0", 300), "datamachine_bot_" + strings.Repeat("Z", 64)} {
		if got := Hint(bad); got != "" {
			t.Fatalf("Hint(%q) = %q, want empty for a non-token", bad, got)
		}
	}
}

func TestChecksumIsCRC32OfBody(t *testing.T) {
	raw, err := Generate(DefaultPrefix, "bot")
	if err != nil {
		t.Fatal(err)
	}
	body := raw[:len(raw)-8]
	sum := crc32.ChecksumIEEE([]byte(body))
	if want := body + hex8(sum); raw != want {
		t.Fatalf("checksum: got %q, want %q", raw, want)
	}
}

func hex8(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}
