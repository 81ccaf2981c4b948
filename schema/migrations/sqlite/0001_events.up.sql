-- The event log: the only source of truth (DESIGN.md, "The one rule").
-- position is the rowid alias, assigned by the single writer under BEGIN IMMEDIATE, so it is
-- gap-free and follows commit order. Ids are stored as canonical text, recorded_at as
-- microseconds since the Unix epoch (UTC).
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    stream_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    id          TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
