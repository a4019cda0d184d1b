-- Alarm management (ISA-18.2): the current state of every alarm (so that a restart keeps what
-- operators acknowledged, shelved or took out of service), the append-only journal of every
-- transition, and one row per occurrence (raise → clear) for the incident list.
CREATE TABLE alarm_state (
    alarm          TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    active         INTEGER NOT NULL,
    raw            INTEGER NOT NULL,
    raw_since      TEXT,
    active_since   TEXT,
    acked_by       TEXT,
    acked_at       TEXT,
    comment        TEXT,
    shelved_until  TEXT,
    shelve_reason  TEXT,
    out_of_service TEXT,
    value          TEXT,
    peak           REAL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE alarm_journal (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts       TEXT NOT NULL,
    alarm    TEXT NOT NULL,
    park     TEXT NOT NULL,
    priority TEXT NOT NULL,
    event    TEXT NOT NULL,
    state    TEXT NOT NULL,
    value    TEXT,
    actor    TEXT,
    comment  TEXT
);
CREATE INDEX alarm_journal_ts ON alarm_journal(ts);
CREATE INDEX alarm_journal_park ON alarm_journal(park, id);

CREATE TRIGGER alarm_journal_no_update BEFORE UPDATE ON alarm_journal
BEGIN
    SELECT RAISE(ABORT, 'alarm journal rows are append-only');
END;

CREATE TRIGGER alarm_journal_no_delete BEFORE DELETE ON alarm_journal
BEGIN
    SELECT RAISE(ABORT, 'alarm journal rows are append-only');
END;

CREATE TABLE alarm_incidents (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm     TEXT NOT NULL,
    park      TEXT NOT NULL,
    priority  TEXT NOT NULL,
    started   TEXT NOT NULL,
    ended     TEXT,
    peak      REAL,
    acked_by  TEXT,
    acked_at  TEXT
);
CREATE INDEX alarm_incidents_started ON alarm_incidents(started);
