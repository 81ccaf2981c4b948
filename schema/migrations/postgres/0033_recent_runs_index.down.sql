DROP INDEX flow_run_names_created;
ALTER TABLE flow_run_names DROP COLUMN created;
