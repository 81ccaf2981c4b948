DROP INDEX flow_runs_deployment_scheduled;
DROP INDEX flow_runs_queue_scheduled;
ALTER TABLE flow_runs DROP COLUMN work_queue_id;
