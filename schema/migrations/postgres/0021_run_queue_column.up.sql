-- A run's queue was kept twice: in flow_run_queues and in flow_runs.work_queue_id (0018). The
-- column is the one kept: the pool and queue filters join it to work_queues, and deleting a
-- queue clears it on the queue's runs (each run's stream records that, as Prefect's foreign key
-- sets it to NULL).
DROP INDEX flow_run_queues_queue;
DROP INDEX flow_run_queues_pool;
DROP TABLE flow_run_queues;

-- Who made a run (Prefect's created_by: the scheduler's schedule, an automation), for the
-- flow run filter on it; the whole value is in the run's view. Runs made before had none.
ALTER TABLE flow_runs ADD COLUMN created_by_id text;
ALTER TABLE flow_runs ADD COLUMN created_by_type text;
