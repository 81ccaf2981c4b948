DROP INDEX deployments_status_queue;
ALTER TABLE deployments DROP COLUMN status;
