-- Sessions: only the SHA-256 of the token is stored.
CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY,
    token_sha256   TEXT    NOT NULL UNIQUE,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    source         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    expires_at     TEXT    NOT NULL,
    last_seen_at   TEXT    NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- One row per change to a user's sessions, role or grants, so that every process holding a
-- session cache (server, panel) learns about changes made by another (e.g. `stator user disable`).
CREATE TABLE user_changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    ts      TEXT    NOT NULL
);
