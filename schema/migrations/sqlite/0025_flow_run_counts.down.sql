DROP TRIGGER flow_run_counts_update;
DROP TRIGGER flow_run_counts_delete;
DROP TRIGGER flow_run_counts_insert;
DROP TABLE flow_run_counts;
