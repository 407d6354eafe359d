package token

import "errors"

// ErrMalformed is matched (errors.Is) by every error that reports a string
// which is not shaped like a token, or a prefix or slug that breaks the format.
var ErrMalformed = errors.New("token: malformed")

// ErrChecksum means a well-formed token whose checksum does not match: a
// typo, a truncated copy or an invented token.
var ErrChecksum = errors.New("token: checksum mismatch")

// FormatError reports which part of a token, prefix or slug is malformed and
// why; it matches ErrMalformed and never carries the offending input.
type FormatError struct {
	// Part is "token", "prefix", "slug" or "secret".
	Part string
	// Reason is a fixed, input-free description such as "too long".
	Reason string
}

// Error returns "token: malformed <part>: <reason>".
func (e *FormatError) Error() string {
	return "token: malformed " + e.Part + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *FormatError) Unwrap() error { return ErrMalformed }

// Errors are preallocated so that rejecting garbage costs no allocation.
var (
	errTooLong       = &FormatError{"token", "longer than 256 bytes"}
	errTooShort      = &FormatError{"token", "too short"}
	errWrongPrefix   = &FormatError{"prefix", "does not match the configured prefix"}
	errNoSeparator   = &FormatError{"token", "missing '_' before the 64 hex characters"}
	errSecretHex     = &FormatError{"secret", "must be 64 lowercase hex characters"}
	errPrefixEmpty   = &FormatError{"prefix", "is empty"}
	errPrefixLong    = &FormatError{"prefix", "longer than 32 characters"}
	errPrefixFirst   = &FormatError{"prefix", "must start with a lowercase letter a-z"}
	errPrefixCharset = &FormatError{"prefix", "may contain only a-z and 0-9 (no '_')"}
	errSlugEmpty     = &FormatError{"slug", "is empty"}
	errSlugLong      = &FormatError{"slug", "longer than 64 characters"}
	errSlugCharset   = &FormatError{"slug", "may contain only a-z, 0-9, '_' and '-'"}
)
