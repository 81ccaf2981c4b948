-- The newest runs (api/queries/event_log.py, the event log's index page) are read in `created`
-- order. flow_runs had no index on it, so at a million runs that page read and sorted every
-- run; run ids are random (uuid4), so no id order stands in for it. The index is on
-- flow_run_names (migration 0030) rather than flow_runs: a state change is never a HOT update
-- of flow_runs and adds an entry to each of its indexes, while a flow_run_names row is written
-- only when a run is created, renamed or deleted (a flow run's `created` never changes after).
ALTER TABLE flow_run_names ADD COLUMN created bigint;
UPDATE flow_run_names n SET created = r.created FROM flow_runs r WHERE r.id = n.run_id;
ALTER TABLE flow_run_names ALTER COLUMN created SET NOT NULL;
CREATE INDEX flow_run_names_created ON flow_run_names (created, run_id);
