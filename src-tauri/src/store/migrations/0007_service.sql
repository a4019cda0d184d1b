-- Service periods: one row per period a park was (or is) in service. The open period of a park
-- (ended_at NULL) is the park's service mode; it survives a restart. Alarm journals read the
-- periods to mark alarms raised in service.
CREATE TABLE service_periods (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    park        TEXT    NOT NULL,
    user_id     INTEGER NOT NULL,
    username    TEXT    NOT NULL,
    session_id  INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,
    ended_at    TEXT,
    end_reason  TEXT
);
CREATE UNIQUE INDEX service_periods_open ON service_periods(park) WHERE ended_at IS NULL;
CREATE INDEX service_periods_started ON service_periods(started_at);

-- Calibration records: append-only, one per finished calibration run (pass or fail). The record
-- itself is JSON (references, raw readings, spreads, old/new gain and offset, errors, next due).
CREATE TABLE calibration_records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    calibration TEXT    NOT NULL,
    park        TEXT    NOT NULL,
    ts          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    record      TEXT    NOT NULL
);
CREATE INDEX calibration_records_ts ON calibration_records(calibration, ts);

CREATE TRIGGER calibration_records_no_update BEFORE UPDATE ON calibration_records
BEGIN
    SELECT RAISE(ABORT, 'calibration records are append-only');
END;

CREATE TRIGGER calibration_records_no_delete BEFORE DELETE ON calibration_records
BEGIN
    SELECT RAISE(ABORT, 'calibration records are append-only');
END;
