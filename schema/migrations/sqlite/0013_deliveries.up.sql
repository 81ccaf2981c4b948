-- The notifier's delivery log (projections/deliveries.py), folded from the delivery-<id> streams.
-- Ids are canonical text and times microseconds since the Unix epoch (UTC), as in 0002; each
-- row keeps its whole view (message, attempts, outcome) as JSON in `view`.
--
-- `next_attempt_at` is set only while a delivery waits to be sent (pending or retrying), so the
-- dispatcher's "what is due" is a range read on its index, which holds no sent or dead rows.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    rule_id         TEXT NOT NULL,
    rule_name       TEXT,
    channel_id      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    flow_run_id     TEXT,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    view            BLOB NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_status_created ON deliveries (status, created);
CREATE INDEX deliveries_rule_created ON deliveries (rule_id, created);
CREATE INDEX deliveries_channel_created ON deliveries (channel_id, created);
CREATE INDEX deliveries_created ON deliveries (created);

-- A channel is failing after its endpoint answered 404 or 410, until a later delivery is sent.
CREATE TABLE channel_health (
    channel_id TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    reason     TEXT,
    since      INTEGER NOT NULL,
    updated    INTEGER NOT NULL
);
