-- A deployment's recorded status (READY / NOT_READY, projections/deployments.py) as a column:
-- the status service looks for READY deployments whose polls have stopped, and a work queue's
-- poll for the NOT_READY deployments of that queue.
ALTER TABLE deployments ADD COLUMN status TEXT NOT NULL DEFAULT 'NOT_READY';
CREATE INDEX deployments_status_queue ON deployments (status, work_pool_name, work_queue_name);
