// Package token formats, generates, parses and hashes agentauthz bearer
// tokens of the form {prefix}_{agent_slug}_{64 lowercase hex}.
//
// The 64 hex characters are 28 bytes from crypto/rand followed by a CRC32
// (IEEE) checksum of everything before it, so a mistyped, invented or
// re-slugged token is rejected by Parse before any database lookup
// (GitHub-style). The slug is for humans only; lookups go by Hash.
//
// This package is pure: no I/O besides crypto/rand, no logging. It must
// never put a raw token (or any part of its secret) into an error message,
// a String method or a log line; errors say what is wrong, never what was
// given. Only Hint may be shown, because it reveals at most 24 of the 224
// random bits.
package token
