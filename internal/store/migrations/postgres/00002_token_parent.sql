-- A token minted by another token records its parent, so that revoking a
-- token revokes every token minted from it, transitively (as Vault does with
-- child tokens). A user- or operator-minted token has no parent.

-- +goose Up
ALTER TABLE agent_tokens ADD COLUMN parent_token_id BIGINT NULL
    CONSTRAINT agent_tokens_parent_fkey REFERENCES agent_tokens (id) ON DELETE SET NULL;
CREATE INDEX agent_tokens_parent_token_id_idx ON agent_tokens (parent_token_id);

-- +goose Down
DROP INDEX agent_tokens_parent_token_id_idx;
ALTER TABLE agent_tokens DROP COLUMN parent_token_id;
