-- Read models of deployments and their schedules (projections/deployments.py), folded from the
-- deployment-<id> streams. As in 0009, each row keeps its whole view as JSON in `view` and copies
-- what filters and sorts need into columns; ids are text, times microseconds since the epoch.
-- A deployment's id is derived from its flow and name, so (flow_id, name) is unique by
-- construction; the index is not UNIQUE so that replaying a pushed log can never fail.
CREATE TABLE deployments (
    id              TEXT PRIMARY KEY,
    flow_id         TEXT NOT NULL,
    name            TEXT NOT NULL,
    paused          INTEGER NOT NULL,
    work_queue_name TEXT,
    work_pool_name  TEXT,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    view            BLOB NOT NULL
);
CREATE INDEX deployments_flow_name ON deployments (flow_id, name);
CREATE INDEX deployments_name ON deployments (name);

CREATE TABLE deployment_schedules (
    id            TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    active        INTEGER NOT NULL,
    slug          TEXT,
    created       INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    view          BLOB NOT NULL
);
CREATE INDEX deployment_schedules_deployment ON deployment_schedules (deployment_id);

-- get_scheduled_flow_runs: a deployment's Scheduled runs by next scheduled start time.
CREATE INDEX flow_runs_deployment ON flow_runs (deployment_id, next_scheduled_start_time);
