-- Read models of work pools, work queues and workers (projections/work_pools.py), folded from
-- the "work-pools" stream, the worker-<pool>-<name> streams and the work-pool-polls-<pool>
-- streams. Each row keeps its whole view as JSON in `view` and copies what filters, sorts and
-- get_scheduled_flow_runs need into columns; ids are text, times microseconds since the epoch.
--
-- Names are unique (commands decide on one stream); the indexes are not UNIQUE so that a
-- replayed log can never fail an append.
CREATE TABLE work_pools (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    type    text NOT NULL,
    status  text NOT NULL,
    created bigint NOT NULL,
    updated bigint NOT NULL,
    view    bytea NOT NULL
);
CREATE INDEX work_pools_name ON work_pools (name);

CREATE TABLE work_queues (
    id           text PRIMARY KEY,
    work_pool_id text NOT NULL,
    name         text NOT NULL,
    priority     bigint NOT NULL,
    status       text NOT NULL,
    created      bigint NOT NULL,
    updated      bigint NOT NULL,
    view         bytea NOT NULL
);
CREATE INDEX work_queues_pool_name ON work_queues (work_pool_id, name);

-- One row per worker, keyed by its pool and name (what a heartbeat names).
CREATE TABLE workers (
    work_pool_id   text NOT NULL,
    name           text NOT NULL,
    id             text NOT NULL,
    status         text NOT NULL,
    last_heartbeat bigint NOT NULL,
    created        bigint NOT NULL,
    updated        bigint NOT NULL,
    view           bytea NOT NULL,
    PRIMARY KEY (work_pool_id, name)
);

-- The queue (and pool) a flow run was created in: get_scheduled_flow_runs and the flow run
-- filters on pools and queues join flow_runs to it by the run's id.
CREATE TABLE flow_run_queues (
    flow_run_id   text PRIMARY KEY,
    work_queue_id text NOT NULL,
    work_pool_id  text NOT NULL
);
CREATE INDEX flow_run_queues_queue ON flow_run_queues (work_queue_id);
CREATE INDEX flow_run_queues_pool ON flow_run_queues (work_pool_id);
