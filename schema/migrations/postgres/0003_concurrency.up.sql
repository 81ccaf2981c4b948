-- Read model of concurrency limits and the leases that hold their slots
-- (projections/concurrency.py). Every row is folded from the concurrency-limit-<id> streams.
-- Ids are canonical text and times are microseconds since the Unix epoch (UTC), as in 0002.
--
-- A deleted limit keeps its row (deleted = 1): its stream's version is what the next
-- command on that name must expect, and a limit's id is derived from its name.
CREATE TABLE concurrency_limits (
    id                         text PRIMARY KEY,
    name                       text NOT NULL UNIQUE,
    version                    bigint NOT NULL,
    slot_limit                 bigint NOT NULL,
    active                     bigint NOT NULL,
    slot_decay_per_second      double precision NOT NULL,
    avg_slot_occupancy_seconds double precision NOT NULL,
    deleted                    bigint NOT NULL,
    created                    bigint NOT NULL,
    updated                    bigint NOT NULL
);

-- One row per (lease, limit): a lease over several limits holds slots on each of them.
-- A row past expires_at no longer counts against its limit, whether or not its release
-- (reason "expired") has been recorded yet.
CREATE TABLE concurrency_leases (
    lease_id    text NOT NULL,
    limit_id    text NOT NULL,
    slots       bigint NOT NULL,
    holder_type text,
    holder_id   text,
    acquired_at bigint NOT NULL,
    expires_at  bigint NOT NULL,
    PRIMARY KEY (lease_id, limit_id)
);
CREATE INDEX concurrency_leases_limit ON concurrency_leases (limit_id);
CREATE INDEX concurrency_leases_expires ON concurrency_leases (expires_at);
