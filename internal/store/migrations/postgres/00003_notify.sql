-- Change propagation: every committed change that can end, narrow or widen
-- a cached credential or a decision's facts notifies channel
-- agentauthz_changes, from the database itself and in the same transaction
-- (PostgreSQL delivers a NOTIFY only when its transaction commits, and
-- folds identical payloads of one transaction into one). Each server
-- replica LISTENs and evicts exactly what a notification names; see
-- internal/changes. Payloads are tiny JSON: {"t":"token","id":12},
-- {"t":"agent","id":7}, {"t":"user","id":3}; a grant change names its
-- agent. The channel name and payload format are part of the contract with
-- internal/changes (store.ChangeChannel).
--
-- Writes that change nothing a replica caches or decides on do not notify:
-- last_used_at (written every few seconds by every replica) and inserts of
-- tokens, agents and users (nothing can be cached for a row that did not
-- exist; see credential.rememberUnknown for the negative cache).
-- SQLite has no NOTIFY: ../sqlite/00003_notify.sql is empty, and a server
-- on SQLite polls PRAGMA data_version instead.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION agentauthz_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind TEXT := TG_ARGV[0];
    row_id BIGINT;
BEGIN
    -- Separate statements: PL/pgSQL resolves a record's fields when it
    -- runs a statement, and only agent_grants has agent_id.
    IF TG_TABLE_NAME = 'agent_grants' THEN
        IF TG_OP = 'DELETE' THEN
            row_id := OLD.agent_id;
        ELSE
            row_id := NEW.agent_id;
        END IF;
        -- A grant moved to another agent (not done today) concerns both.
        IF TG_OP = 'UPDATE' THEN
            IF OLD.agent_id <> NEW.agent_id THEN
                PERFORM pg_notify('agentauthz_changes', '{"t":"agent","id":' || OLD.agent_id || '}');
            END IF;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        row_id := OLD.id;
    ELSE
        row_id := NEW.id;
    END IF;
    PERFORM pg_notify('agentauthz_changes', '{"t":"' || kind || '","id":' || row_id || '}');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- Every column but last_used_at (touched constantly, decides nothing).
CREATE TRIGGER agent_tokens_notify_update AFTER UPDATE ON agent_tokens FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
       OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
       OR OLD.capabilities IS DISTINCT FROM NEW.capabilities
       OR OLD.agent_id IS DISTINCT FROM NEW.agent_id
       OR OLD.parent_token_id IS DISTINCT FROM NEW.parent_token_id
       OR OLD.token_hash IS DISTINCT FROM NEW.token_hash
       OR OLD.token_prefix IS DISTINCT FROM NEW.token_prefix
       OR OLD.label IS DISTINCT FROM NEW.label
       OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION agentauthz_notify_change('token');
CREATE TRIGGER agent_tokens_notify_delete AFTER DELETE ON agent_tokens FOR EACH ROW
    EXECUTE FUNCTION agentauthz_notify_change('token');

-- Status, tool policy, owner, slug, name; deletion (which cascades to the
-- agent's tokens and grants).
CREATE TRIGGER agents_notify AFTER UPDATE OR DELETE ON agents FOR EACH ROW
    EXECUTE FUNCTION agentauthz_notify_change('agent');

-- Status, roles, login, name; deletion (which cascades to agents).
CREATE TRIGGER users_notify AFTER UPDATE OR DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION agentauthz_notify_change('user');

-- Grants are facts of decisions about the agent: any change names it.
CREATE TRIGGER agent_grants_notify AFTER INSERT OR UPDATE OR DELETE ON agent_grants FOR EACH ROW
    EXECUTE FUNCTION agentauthz_notify_change('agent');

-- +goose Down
DROP TRIGGER agent_grants_notify ON agent_grants;
DROP TRIGGER users_notify ON users;
DROP TRIGGER agents_notify ON agents;
DROP TRIGGER agent_tokens_notify_delete ON agent_tokens;
DROP TRIGGER agent_tokens_notify_update ON agent_tokens;
DROP FUNCTION agentauthz_notify_change();
