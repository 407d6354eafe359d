-- The initial agentauthz schema for SQLite. Keep it structurally identical
-- to ../postgres/00001_init.sql: same tables, columns, constraints and
-- indexes; only column types differ. Timestamps are UTC text in the fixed
-- width layout 2006-01-02T15:04:05.000000000Z so that text comparison
-- orders them (see sqliteTime in dialect.go). AUTOINCREMENT keeps ids of
-- deleted rows from being reused.

-- +goose Up
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    login      TEXT    NOT NULL,
    name       TEXT    NOT NULL DEFAULT '',
    roles      TEXT    NOT NULL DEFAULT '[]',
    status     TEXT    NOT NULL DEFAULT 'active',
    created_at TEXT    NOT NULL,
    CONSTRAINT users_login_key UNIQUE (login),
    CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled'))
) STRICT;

CREATE TABLE agents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT    NOT NULL,
    name        TEXT    NOT NULL DEFAULT '',
    owner_id    INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'active',
    tool_policy TEXT    NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    CONSTRAINT agents_slug_key UNIQUE (slug),
    CONSTRAINT agents_owner_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT agents_status_check CHECK (status IN ('active', 'inactive'))
) STRICT;
CREATE INDEX agents_owner_id_idx ON agents (owner_id);

-- capabilities: NULL means "the owner's ceiling", '[]' means "nothing".
CREATE TABLE agent_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id     INTEGER NOT NULL,
    token_hash   TEXT    NOT NULL,
    token_prefix TEXT    NOT NULL DEFAULT '',
    label        TEXT    NOT NULL DEFAULT '',
    capabilities TEXT    NULL,
    last_used_at TEXT    NULL,
    expires_at   TEXT    NULL,
    created_at   TEXT    NOT NULL,
    revoked_at   TEXT    NULL,
    CONSTRAINT agent_tokens_agent_fkey FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX agent_tokens_token_hash_key ON agent_tokens (token_hash);
CREATE INDEX agent_tokens_agent_id_idx ON agent_tokens (agent_id);

CREATE TABLE agent_grants (
    agent_id   INTEGER NOT NULL,
    principal  TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    granted_at TEXT    NOT NULL,
    CONSTRAINT agent_grants_pkey PRIMARY KEY (agent_id, principal),
    CONSTRAINT agent_grants_agent_fkey FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX agent_grants_principal_idx ON agent_grants (principal);

-- +goose Down
DROP TABLE agent_grants;
DROP TABLE agent_tokens;
DROP TABLE agents;
DROP TABLE users;
