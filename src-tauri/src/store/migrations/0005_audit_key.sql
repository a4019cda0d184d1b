-- From which audit row on the chain is keyed (HMAC-SHA256 with a key kept outside the
-- database). One row, inserted when a keyed writer first opens the database; rows before it keep
-- their plain SHA-256 chain. Like the audit rows themselves, never updated or deleted.
CREATE TABLE audit_chain (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    keyed_from INTEGER NOT NULL
);

CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN
    SELECT RAISE(ABORT, 'the audit chain marker is append-only');
END;

CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN
    SELECT RAISE(ABORT, 'the audit chain marker is append-only');
END;

-- Pruning finds old sessions by these.
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX user_changes_ts ON user_changes(ts);
