-- Read models of flows, flow runs and task runs (projections/flows.py, projections/runs.py).
-- Each row keeps the whole view as JSON in `view` and copies the fields that filters and sorts
-- need into columns. Ids are canonical text and times are microseconds since the Unix epoch
-- (UTC) on both backends, so the projections' SQL is the same for both.
CREATE TABLE flows (
    id      text PRIMARY KEY,
    name    text NOT NULL UNIQUE,
    created bigint NOT NULL,
    view    bytea NOT NULL
);

CREATE TABLE flow_runs (
    id                        text PRIMARY KEY,
    version                   bigint NOT NULL,
    flow_id                   text NOT NULL,
    name                      text NOT NULL,
    state_type                text,
    state_name                text,
    start_time                bigint,
    end_time                  bigint,
    expected_start_time       bigint,
    next_scheduled_start_time bigint,
    deployment_id             text,
    parent_task_run_id        text,
    work_queue_name           text,
    flow_version              text,
    idempotency_key           text,
    created                   bigint NOT NULL,
    view                      bytea NOT NULL
);
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (flow_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX flow_runs_flow ON flow_runs (flow_id);
CREATE INDEX flow_runs_state ON flow_runs (state_type, state_name);
CREATE INDEX flow_runs_expected_start ON flow_runs (expected_start_time);
CREATE INDEX flow_runs_next_scheduled ON flow_runs (next_scheduled_start_time);
CREATE INDEX flow_runs_parent_task_run ON flow_runs (parent_task_run_id);

CREATE TABLE flow_run_tags (
    run_id text NOT NULL,
    tag    text NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag);

CREATE TABLE task_runs (
    id                  text PRIMARY KEY,
    version             bigint NOT NULL,
    flow_run_id         text,
    name                text NOT NULL,
    task_key            text NOT NULL,
    dynamic_key         text NOT NULL,
    state_type          text,
    state_name          text,
    state_timestamp     bigint,
    start_time          bigint,
    end_time            bigint,
    expected_start_time bigint,
    created             bigint NOT NULL,
    view                bytea NOT NULL
);
CREATE INDEX task_runs_flow_run ON task_runs (flow_run_id);
CREATE INDEX task_runs_state ON task_runs (state_type, state_name);

CREATE TABLE task_run_tags (
    run_id text NOT NULL,
    tag    text NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX task_run_tags_tag ON task_run_tags (tag);

-- Run logs are the documented exception to "every table is a projection" (DESIGN.md): plain
-- append-only rows with retention, since log lines are not state.
CREATE TABLE logs (
    id          text PRIMARY KEY,
    flow_run_id text,
    task_run_id text,
    name        text NOT NULL,
    level       bigint NOT NULL,
    message     text NOT NULL,
    timestamp   bigint NOT NULL,
    created     bigint NOT NULL
);
CREATE INDEX logs_flow_run ON logs (flow_run_id, timestamp);
CREATE INDEX logs_task_run ON logs (task_run_id, timestamp);
CREATE INDEX logs_timestamp ON logs (timestamp);
