-- Users, their park grants and badge IDs.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    -- Usernames are restricted to ASCII, so NOCASE is exact case-insensitivity.
    username        TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'serviceman', 'admin', 'superuser')),
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at      TEXT    NOT NULL,
    last_login_at   TEXT,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    pin_hash        TEXT
);

CREATE TABLE user_park_access (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    park       TEXT    NOT NULL,
    granted_at TEXT    NOT NULL,
    PRIMARY KEY (user_id, park)
) WITHOUT ROWID;

-- Badge IDs are identifiers typed by a reader: stored as SHA-256 (hex), unique across users.
CREATE TABLE user_badges (
    badge_sha256 TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX user_badges_user ON user_badges(user_id);
