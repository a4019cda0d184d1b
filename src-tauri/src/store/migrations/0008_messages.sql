-- Messages between people and to park channels, and the shift log. Both are records: rows are
-- never edited or deleted (a correction is a new message/entry), which the triggers enforce.

-- One row per message. `conv` keys the conversation: `park:<id>` for a channel, `u:<lo>:<hi>`
-- (the two user ids, smaller first) for a direct conversation, so that opening a conversation is
-- one index range. `sender`/`recipient` keep the names as they were when sent.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    conv         TEXT    NOT NULL,
    sender_id    INTEGER NOT NULL,
    sender       TEXT    NOT NULL,
    -- The peer of a direct message (NULL for a channel).
    recipient_id INTEGER,
    -- A username or `park:<id>`.
    recipient    TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    alarm        TEXT,
    ref          TEXT,
    sent_at      TEXT    NOT NULL
);
CREATE INDEX messages_conv ON messages(conv, id);
CREATE INDEX messages_sender ON messages(sender_id, conv, id);
CREATE INDEX messages_recipient ON messages(recipient_id, conv, id) WHERE recipient_id IS NOT NULL;
CREATE INDEX messages_sent ON messages(sent_at);

-- Delivery and read time per recipient (every active member of a channel when it was sent).
CREATE TABLE message_recipients (
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    user_id      INTEGER NOT NULL,
    delivered_at TEXT,
    read_at      TEXT,
    PRIMARY KEY (message_id, user_id)
) WITHOUT ROWID;
CREATE INDEX message_unread ON message_recipients(user_id, message_id) WHERE read_at IS NULL;
CREATE INDEX message_undelivered ON message_recipients(user_id) WHERE delivered_at IS NULL;

CREATE TRIGGER messages_no_update BEFORE UPDATE ON messages
BEGIN SELECT RAISE(ABORT, 'messages are append-only'); END;
CREATE TRIGGER messages_no_delete BEFORE DELETE ON messages
BEGIN SELECT RAISE(ABORT, 'messages are append-only'); END;
-- Delivery and read times are set once; nothing else of a recipient row changes.
CREATE TRIGGER message_recipients_once BEFORE UPDATE ON message_recipients
WHEN NEW.message_id IS NOT OLD.message_id OR NEW.user_id IS NOT OLD.user_id
  OR (OLD.delivered_at IS NOT NULL AND NEW.delivered_at IS NOT OLD.delivered_at)
  OR (OLD.read_at IS NOT NULL AND NEW.read_at IS NOT OLD.read_at)
BEGIN SELECT RAISE(ABORT, 'delivery and read times are set once'); END;
CREATE TRIGGER message_recipients_no_delete BEFORE DELETE ON message_recipients
BEGIN SELECT RAISE(ABORT, 'messages are append-only'); END;

-- The shift log: one row per entry; a handover carries the snapshot (JSON) of the park's open
-- alarms and service state at that moment.
CREATE TABLE logbook (
    id         INTEGER PRIMARY KEY,
    park       TEXT    NOT NULL,
    category   TEXT    NOT NULL CHECK (category IN ('note', 'handover', 'maintenance', 'incident')),
    author_id  INTEGER NOT NULL,
    author     TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    alarm      TEXT,
    snapshot   TEXT,
    created_at TEXT    NOT NULL
);
CREATE INDEX logbook_park ON logbook(park, id);
CREATE INDEX logbook_created ON logbook(created_at);

-- Confirmations of handover entries by the incoming operator(s).
CREATE TABLE logbook_acks (
    entry_id INTEGER NOT NULL REFERENCES logbook(id),
    user_id  INTEGER NOT NULL,
    username TEXT    NOT NULL,
    acked_at TEXT    NOT NULL,
    PRIMARY KEY (entry_id, user_id)
) WITHOUT ROWID;

CREATE TRIGGER logbook_no_update BEFORE UPDATE ON logbook
BEGIN SELECT RAISE(ABORT, 'the shift log is append-only'); END;
CREATE TRIGGER logbook_no_delete BEFORE DELETE ON logbook
BEGIN SELECT RAISE(ABORT, 'the shift log is append-only'); END;
CREATE TRIGGER logbook_acks_no_update BEFORE UPDATE ON logbook_acks
BEGIN SELECT RAISE(ABORT, 'the shift log is append-only'); END;
CREATE TRIGGER logbook_acks_no_delete BEFORE DELETE ON logbook_acks
BEGIN SELECT RAISE(ABORT, 'the shift log is append-only'); END;
