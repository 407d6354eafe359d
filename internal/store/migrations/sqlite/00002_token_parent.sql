-- A token minted by another token records its parent, so that revoking a
-- token revokes every token minted from it, transitively. No foreign key:
-- see ../postgres/00002_token_parent.sql. Keep it identical
-- to ../postgres/00002_token_parent.sql but for column types.

-- +goose Up
ALTER TABLE agent_tokens ADD COLUMN parent_token_id INTEGER NULL;
CREATE INDEX agent_tokens_parent_token_id_idx ON agent_tokens (parent_token_id);

-- +goose Down
DROP INDEX agent_tokens_parent_token_id_idx;
ALTER TABLE agent_tokens DROP COLUMN parent_token_id;
