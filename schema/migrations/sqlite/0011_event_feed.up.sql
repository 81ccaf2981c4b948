-- Where each asynchronous projection has got to in the log (projections/checkpoints.py): it
-- has folded every event up to `position`, and resumes after it.
CREATE TABLE projection_checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

-- Prefect's event feed (projections/event_feed.py): the events clients sent in and the
-- flow-run state-change events derived from the log, one row each, by Prefect event id.
-- `body` is the event as served (JSON); `occurred` is microseconds since the Unix epoch;
-- `position` is the log position of the record it comes from.
CREATE TABLE event_feed (
    id          TEXT PRIMARY KEY,
    occurred    INTEGER NOT NULL,
    event       TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    position    INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX event_feed_occurred ON event_feed (occurred);
CREATE INDEX event_feed_event ON event_feed (event, occurred);
CREATE INDEX event_feed_resource ON event_feed (resource_id, occurred);

-- Every resource of a feed event: the primary one (ordinal 0, role '') and each related one,
-- with its labels as a JSON object, for the related, any_resource and labels filters.
CREATE TABLE event_feed_resources (
    event_id    TEXT NOT NULL,
    ordinal     INTEGER NOT NULL,
    occurred    INTEGER NOT NULL,
    resource_id TEXT NOT NULL,
    role        TEXT NOT NULL,
    labels      TEXT NOT NULL,
    PRIMARY KEY (event_id, ordinal)
);
CREATE INDEX event_feed_resources_resource ON event_feed_resources (resource_id, occurred);
