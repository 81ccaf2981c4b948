-- Read models of flows, flow runs and task runs (projections/flows.py, projections/runs.py).
-- Each row keeps the whole view as JSON in `view` and copies the fields that filters and sorts
-- need into columns. Ids are canonical text and times are microseconds since the Unix epoch
-- (UTC) on both backends, so the projections' SQL is the same for both.
CREATE TABLE flows (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    view    BLOB NOT NULL
);

CREATE TABLE flow_runs (
    id                        TEXT PRIMARY KEY,
    version                   INTEGER NOT NULL,
    flow_id                   TEXT NOT NULL,
    name                      TEXT NOT NULL,
    state_type                TEXT,
    state_name                TEXT,
    start_time                INTEGER,
    end_time                  INTEGER,
    expected_start_time       INTEGER,
    next_scheduled_start_time INTEGER,
    deployment_id             TEXT,
    parent_task_run_id        TEXT,
    work_queue_name           TEXT,
    flow_version              TEXT,
    idempotency_key           TEXT,
    created                   INTEGER NOT NULL,
    view                      BLOB NOT NULL
);
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (flow_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX flow_runs_flow ON flow_runs (flow_id);
CREATE INDEX flow_runs_state ON flow_runs (state_type, state_name);
CREATE INDEX flow_runs_expected_start ON flow_runs (expected_start_time);
CREATE INDEX flow_runs_next_scheduled ON flow_runs (next_scheduled_start_time);
CREATE INDEX flow_runs_parent_task_run ON flow_runs (parent_task_run_id);

CREATE TABLE flow_run_tags (
    run_id TEXT NOT NULL,
    tag    TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX flow_run_tags_tag ON flow_run_tags (tag);

CREATE TABLE task_runs (
    id                  TEXT PRIMARY KEY,
    version             INTEGER NOT NULL,
    flow_run_id         TEXT,
    name                TEXT NOT NULL,
    task_key            TEXT NOT NULL,
    dynamic_key         TEXT NOT NULL,
    state_type          TEXT,
    state_name          TEXT,
    state_timestamp     INTEGER,
    start_time          INTEGER,
    end_time            INTEGER,
    expected_start_time INTEGER,
    created             INTEGER NOT NULL,
    view                BLOB NOT NULL
);
CREATE INDEX task_runs_flow_run ON task_runs (flow_run_id);
CREATE INDEX task_runs_state ON task_runs (state_type, state_name);

CREATE TABLE task_run_tags (
    run_id TEXT NOT NULL,
    tag    TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX task_run_tags_tag ON task_run_tags (tag);

-- Run logs are the documented exception to "every table is a projection" (DESIGN.md): plain
-- append-only rows with retention, since log lines are not state.
CREATE TABLE logs (
    id          TEXT PRIMARY KEY,
    flow_run_id TEXT,
    task_run_id TEXT,
    name        TEXT NOT NULL,
    level       INTEGER NOT NULL,
    message     TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    created     INTEGER NOT NULL
);
CREATE INDEX logs_flow_run ON logs (flow_run_id, timestamp);
CREATE INDEX logs_task_run ON logs (task_run_id, timestamp);
CREATE INDEX logs_timestamp ON logs (timestamp);
