-- Read models of deployments and their schedules (projections/deployments.py), folded from the
-- deployment-<id> streams. As in 0009, each row keeps its whole view as JSON in `view` and copies
-- what filters and sorts need into columns; ids are text, times microseconds since the epoch.
-- A deployment's id is derived from its flow and name, so (flow_id, name) is unique by
-- construction; the index is not UNIQUE so that replaying a pushed log can never fail.
CREATE TABLE deployments (
    id              text PRIMARY KEY,
    flow_id         text NOT NULL,
    name            text NOT NULL,
    paused          integer NOT NULL,
    work_queue_name text,
    work_pool_name  text,
    created         bigint NOT NULL,
    updated         bigint NOT NULL,
    view            bytea NOT NULL
);
CREATE INDEX deployments_flow_name ON deployments (flow_id, name);
CREATE INDEX deployments_name ON deployments (name);

CREATE TABLE deployment_schedules (
    id            text PRIMARY KEY,
    deployment_id text NOT NULL,
    active        integer NOT NULL,
    slug          text,
    created       bigint NOT NULL,
    updated       bigint NOT NULL,
    view          bytea NOT NULL
);
CREATE INDEX deployment_schedules_deployment ON deployment_schedules (deployment_id);

-- get_scheduled_flow_runs: a deployment's Scheduled runs by next scheduled start time.
CREATE INDEX flow_runs_deployment ON flow_runs (deployment_id, next_scheduled_start_time);
