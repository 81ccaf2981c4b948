-- The event log: the only source of truth (DESIGN.md, "The one rule").
-- position is the rowid alias, assigned by the single writer under BEGIN IMMEDIATE, so it is
-- gap-free and follows commit order. Ids are stored as canonical text, recorded_at as
-- fixed-width ISO 8601 UTC text (2026-01-02T03:04:05.123456Z), so text order is time order.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    stream_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    id          TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    recorded_at TEXT    NOT NULL,
    UNIQUE (stream_id, version)
);
