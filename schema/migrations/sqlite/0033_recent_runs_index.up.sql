-- The newest runs in `created` order from an index on flow_run_names, written only when a run
-- is created, renamed or deleted (see the PostgreSQL migration).
ALTER TABLE flow_run_names ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
UPDATE flow_run_names SET created = (SELECT r.created FROM flow_runs r WHERE r.id = flow_run_names.run_id);
CREATE INDEX flow_run_names_created ON flow_run_names (created, run_id);
