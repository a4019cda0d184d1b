-- Failed logins per account and kind of source: `local` (the panel and the command line) and
-- `remote` (the network), so that guessing over the network never locks the panel's operators
-- out. Supersedes users.failed_attempts and users.locked_until, which are no longer read.
CREATE TABLE login_failures (
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope        TEXT    NOT NULL CHECK (scope IN ('local', 'remote')),
    -- Attempts counted in the current window (counted before the password is checked).
    attempts     INTEGER NOT NULL DEFAULT 0,
    -- When the current window began; the count starts again once the window has passed.
    window_start TEXT    NOT NULL,
    locked_until TEXT,
    PRIMARY KEY (user_id, scope)
) WITHOUT ROWID;

INSERT INTO login_failures (user_id, scope, attempts, window_start, locked_until)
SELECT id, 'local', failed_attempts, COALESCE(locked_until, created_at), locked_until
FROM users
WHERE failed_attempts > 0 OR locked_until IS NOT NULL;
