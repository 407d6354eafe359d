-- The initial agentauthz schema for PostgreSQL. Keep it structurally
-- identical to ../sqlite/00001_init.sql: same tables, columns, constraints
-- and indexes; only column types differ.

-- +goose Up
CREATE TABLE users (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login      TEXT        NOT NULL,
    name       TEXT        NOT NULL DEFAULT '',
    roles      TEXT        NOT NULL DEFAULT '[]',
    status     TEXT        NOT NULL DEFAULT 'active',
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_login_key UNIQUE (login),
    CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled'))
);

CREATE TABLE agents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        TEXT        NOT NULL,
    name        TEXT        NOT NULL DEFAULT '',
    owner_id    BIGINT      NOT NULL,
    status      TEXT        NOT NULL DEFAULT 'active',
    tool_policy TEXT        NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT agents_slug_key UNIQUE (slug),
    CONSTRAINT agents_owner_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT agents_status_check CHECK (status IN ('active', 'inactive'))
);
CREATE INDEX agents_owner_id_idx ON agents (owner_id);

-- capabilities: NULL means "the owner's ceiling", '[]' means "nothing".
CREATE TABLE agent_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id     BIGINT      NOT NULL,
    token_hash   TEXT        NOT NULL,
    token_prefix TEXT        NOT NULL DEFAULT '',
    label        TEXT        NOT NULL DEFAULT '',
    capabilities TEXT        NULL,
    last_used_at TIMESTAMPTZ NULL,
    expires_at   TIMESTAMPTZ NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ NULL,
    CONSTRAINT agent_tokens_agent_fkey FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX agent_tokens_token_hash_key ON agent_tokens (token_hash);
CREATE INDEX agent_tokens_agent_id_idx ON agent_tokens (agent_id);

CREATE TABLE agent_grants (
    agent_id   BIGINT      NOT NULL,
    principal  TEXT        NOT NULL,
    role       TEXT        NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT agent_grants_pkey PRIMARY KEY (agent_id, principal),
    CONSTRAINT agent_grants_agent_fkey FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE
);
CREATE INDEX agent_grants_principal_idx ON agent_grants (principal);

-- +goose Down
DROP TABLE agent_grants;
DROP TABLE agent_tokens;
DROP TABLE agents;
DROP TABLE users;
