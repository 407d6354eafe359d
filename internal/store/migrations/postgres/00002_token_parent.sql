-- A token minted by another token records its parent, so that revoking a
-- token revokes every token minted from it, transitively (as Vault does with
-- child tokens). A user- or operator-minted token has no parent.
--
-- No foreign key, on purpose: a token resolves only while every token above
-- it is present and unrevoked (ResolveTokenHash walks the lineage), so a
-- deleted ancestor ends its descendants instead of orphaning them, and no
-- mint ever locks its parent's row (a stream of mints holding share locks
-- could otherwise starve the revocation that waits for an exclusive one).

-- +goose Up
ALTER TABLE agent_tokens ADD COLUMN parent_token_id BIGINT NULL;
CREATE INDEX agent_tokens_parent_token_id_idx ON agent_tokens (parent_token_id);

-- +goose Down
DROP INDEX agent_tokens_parent_token_id_idx;
ALTER TABLE agent_tokens DROP COLUMN parent_token_id;
