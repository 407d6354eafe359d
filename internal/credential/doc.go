// Package credential turns a raw bearer token into a live agent context on
// the request hot path: parse and checksum (no I/O), SHA-256, a bounded cache
// in front of one indexed store lookup, and the liveness checks (not revoked,
// not expired, agent active, owner present and active).
//
// It is the ONE place where resolved tokens are cached and evicted: every
// change that can end a credential (revocation, agent update or deletion,
// owner update) calls an Evict method here. A cache entry never outlives the
// token's expires_at (expiry is checked on every hit) and never survives an
// eviction that raced with the lookup that filled it. Hashes the store does
// not know are remembered briefly in a separate negative cache, so that a
// forged token repeated costs one store query per negative TTL.
//
// It never logs, stores or returns the raw token.
package credential
