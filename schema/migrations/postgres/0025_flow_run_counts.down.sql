DROP TRIGGER flow_run_counts_delete ON flow_runs;
DROP TRIGGER flow_run_counts_update ON flow_runs;
DROP TRIGGER flow_run_counts_insert ON flow_runs;
DROP FUNCTION runlog_count_flow_runs();
DROP TABLE flow_run_counts;
