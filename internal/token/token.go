package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash/crc32"
	"strings"
)

// DefaultPrefix is the token prefix used when none is configured.
const DefaultPrefix = "datamachine"

// Format limits; the unexported ones split the 64 hex characters.
const (
	// MaxLen is the longest string Parse will look at; anything longer is
	// rejected before any other work.
	MaxLen = 256
	// MaxPrefixLen is the longest valid prefix.
	MaxPrefixLen = 32
	// MaxSlugLen is the longest valid agent slug.
	MaxSlugLen = 64
	// SecretLen is the number of hex characters after the slug.
	SecretLen = 64

	randomBytes = 28                    // 224 bits of entropy
	randomHex   = 2 * randomBytes       // 56
	checksumHex = SecretLen - randomHex // 8
)

// Parsed is what Parse learns from a valid token; it deliberately holds no
// part of the secret and has no String method.
type Parsed struct {
	Prefix string
	Slug   string
}

// ValidPrefix reports (as a *FormatError) why p cannot be a token prefix:
// it must match ^[a-z][a-z0-9]{0,31}$, so it never contains '_'.
func ValidPrefix(p string) error {
	switch {
	case p == "":
		return errPrefixEmpty
	case len(p) > MaxPrefixLen:
		return errPrefixLong
	case p[0] < 'a' || p[0] > 'z':
		return errPrefixFirst
	}
	for i := 1; i < len(p); i++ {
		if c := p[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return errPrefixCharset
		}
	}
	return nil
}

// ValidSlug reports (as a *FormatError) why s cannot be an agent slug: it
// must match ^[a-z0-9_-]{1,64}$.
func ValidSlug(s string) error {
	switch {
	case s == "":
		return errSlugEmpty
	case len(s) > MaxSlugLen:
		return errSlugLong
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return errSlugCharset
		}
	}
	return nil
}

// Generate returns a new random token for the agent slug; the caller shows
// it once and stores only Hash(raw) and Hint(raw).
func Generate(prefix, slug string) (raw string, err error) {
	if err := ValidPrefix(prefix); err != nil {
		return "", err
	}
	if err := ValidSlug(slug); err != nil {
		return "", err
	}
	var secret [randomBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	n := len(prefix) + 1 + len(slug) + 1 + SecretLen
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	b = append(b, '_')
	b = append(b, slug...)
	b = append(b, '_')
	b = hex.AppendEncode(b, secret[:])
	b = appendChecksum(b)
	return string(b), nil
}

// appendChecksum appends the 8-hex CRC32 (IEEE, big-endian) of b to b.
func appendChecksum(b []byte) []byte {
	sum := crc32.ChecksumIEEE(b)
	return hex.AppendEncode(b, []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
}

// Parse checks that raw is a well-formed token with the given prefix and a
// matching checksum, and returns its prefix and slug; errors match
// ErrMalformed or ErrChecksum and never contain raw.
func Parse(prefix, raw string) (Parsed, error) {
	if len(raw) > MaxLen {
		return Parsed{}, errTooLong
	}
	if err := ValidPrefix(prefix); err != nil {
		return Parsed{}, err
	}
	if len(raw) < len(prefix)+1+1+1+SecretLen {
		return Parsed{}, errTooShort
	}
	if !Claims(prefix, raw) {
		return Parsed{}, errWrongPrefix
	}
	tail := len(raw) - SecretLen
	if raw[tail-1] != '_' {
		return Parsed{}, errNoSeparator
	}
	slug := raw[len(prefix)+1 : tail-1]
	if err := ValidSlug(slug); err != nil {
		return Parsed{}, err
	}
	var sum uint32
	for i := tail; i < len(raw); i++ {
		v, ok := hexValue(raw[i])
		if !ok {
			return Parsed{}, errSecretHex
		}
		if i >= len(raw)-checksumHex {
			sum = sum<<4 | uint32(v)
		}
	}
	if checksum(raw[:len(raw)-checksumHex]) != sum {
		return Parsed{}, ErrChecksum
	}
	// Clone so that a Parsed kept around does not pin the raw token's memory.
	return Parsed{Prefix: prefix, Slug: strings.Clone(slug)}, nil
}

// checksum is crc32.ChecksumIEEE over a string without converting it to a
// []byte, which would allocate on every Parse (the tests pin the equality).
func checksum(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// hexValue decodes one lowercase hex digit.
func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Claims reports whether s starts with prefix + "_", i.e. whether a
// credential is meant to be one of our tokens (well-formed or not).
func Claims(prefix, s string) bool {
	return len(s) > len(prefix) && s[len(prefix)] == '_' && s[:len(prefix)] == prefix
}

// Verified is a token that Verify accepted: its prefix, slug and the hash it
// is stored under. Only Verify makes one, so a lookup that takes a Verified
// never parses again, and never sees the secret itself.
type Verified struct {
	Parsed
	hash string
}

// Verify parses raw as Parse does and, when it is well formed, hashes it:
// the one parse of a presented token.
func Verify(prefix, raw string) (Verified, error) {
	p, err := Parse(prefix, raw)
	if err != nil {
		return Verified{}, err
	}
	return Verified{Parsed: p, hash: Hash(raw)}, nil
}

// Hash is the stored form of the verified token (SHA-256 hex).
func (v Verified) Hash() string { return v.hash }

// Hash returns the lowercase SHA-256 hex of the whole raw token, the only
// form in which a token is stored or looked up.
func Hash(raw string) string {
	var buf [MaxLen]byte
	var sum [sha256.Size]byte
	if len(raw) <= MaxLen {
		sum = sha256.Sum256(buf[:copy(buf[:], raw)])
	} else {
		sum = sha256.Sum256([]byte(raw))
	}
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// EqualHash compares two hashes in constant time (for equal lengths).
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// hintHex is how many secret characters Hint reveals.
const hintHex = 6

// Hint returns a non-secret display hint such as "datamachine_slug_ab12cd…",
// or "" if raw is not shaped like a token.
//
// It is safe to store and show: the 6 hex characters are 24 of the 224
// random bits, leaving 200 bits unknown, far beyond guessing; the checksum
// is never shown. The hint tells a user's tokens apart, it does not identify
// one for authentication (lookup is by Hash).
func Hint(raw string) string {
	if len(raw) > MaxLen || len(raw) < 1+1+1+1+SecretLen {
		return ""
	}
	tail := len(raw) - SecretLen
	if raw[tail-1] != '_' || strings.IndexByte(raw[1:tail-2], '_') < 0 {
		return ""
	}
	for i := tail; i < tail+hintHex; i++ {
		if _, ok := hexValue(raw[i]); !ok {
			return ""
		}
	}
	return raw[:tail+hintHex] + "…"
}
