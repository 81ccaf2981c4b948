-- Read model of flow run inputs (projections/flow_run_inputs.py), folded from the
-- run-input-<flow run id> streams: one row per (flow run, key), the value as the client sent it.
-- Keys are unique per run because the commands decide each run's inputs on its one stream; the
-- index is not UNIQUE so that replaying a pushed log can never fail an append. `position` (the
-- log position of the creation) orders inputs created in one microsecond the same on every rebuild.
CREATE TABLE flow_run_inputs (
    id          text PRIMARY KEY,
    flow_run_id text NOT NULL,
    key         text NOT NULL,
    created     bigint NOT NULL,
    position    bigint NOT NULL,
    view        bytea NOT NULL
);
CREATE INDEX flow_run_inputs_run_key ON flow_run_inputs (flow_run_id, key);
CREATE INDEX flow_run_inputs_run_created ON flow_run_inputs (flow_run_id, created, position);
