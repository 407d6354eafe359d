// Package store is the sqlx implementation of model.Store: it persists
// agentauthz's domain records (declared in internal/model) in PostgreSQL or
// SQLite.
//
// A store records facts; it never decides who may do what (that is the
// policy engine's job) and never sees a raw bearer token, only its SHA-256
// hash. One sqlx implementation serves both PostgreSQL and SQLite; dialect
// differences live in small named functions inside this package. Only the
// binary's wiring (cmd/agentauthz) and tests import it; everything else
// depends on model.Store and links no database driver.
package store
