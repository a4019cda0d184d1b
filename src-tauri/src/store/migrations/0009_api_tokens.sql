-- API tokens for machine clients: only the SHA-256 of the token is stored (like sessions).
-- `scopes` is a space-separated list, `parks` a JSON array of the parks granted at creation;
-- what a token may do is re-derived from its creator's current role and grants on every use.
CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY,
    token_sha256   TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes         TEXT    NOT NULL,
    parks          TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    expires_at     TEXT    NOT NULL,
    last_used_at   TEXT,
    last_used_from TEXT,
    revoked_at     TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
