-- Change propagation. On PostgreSQL, 00003_notify.sql installs triggers
-- that NOTIFY every replica of changes; SQLite has no NOTIFY, and a server
-- on SQLite notices other processes' commits by polling PRAGMA
-- data_version (internal/changes). This migration exists so that both
-- stores are at the same schema version; it changes nothing.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
