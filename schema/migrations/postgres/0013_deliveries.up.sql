-- The notifier's delivery log (projections/deliveries.py), folded from the delivery-<id> streams.
-- Ids are canonical text and times microseconds since the Unix epoch (UTC), as in 0002; each
-- row keeps its whole view (message, attempts, outcome) as JSON in `view`.
--
-- `next_attempt_at` is set only while a delivery waits to be sent (pending or retrying), so the
-- dispatcher's "what is due" is a range read on its index, which holds no sent or dead rows.
CREATE TABLE deliveries (
    id              text PRIMARY KEY,
    status          text NOT NULL,
    rule_id         text NOT NULL,
    rule_name       text,
    channel_id      text NOT NULL,
    event_id        text NOT NULL,
    flow_run_id     text,
    attempts        bigint NOT NULL,
    next_attempt_at bigint,
    created         bigint NOT NULL,
    updated         bigint NOT NULL,
    version         bigint NOT NULL,
    view            bytea NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_status_created ON deliveries (status, created);
CREATE INDEX deliveries_rule_created ON deliveries (rule_id, created);
CREATE INDEX deliveries_channel_created ON deliveries (channel_id, created);
CREATE INDEX deliveries_created ON deliveries (created);

-- A channel is failing after its endpoint answered 404 or 410, until a later delivery is sent.
CREATE TABLE channel_health (
    channel_id text PRIMARY KEY,
    status     text NOT NULL,
    reason     text,
    since      bigint NOT NULL,
    updated    bigint NOT NULL
);
