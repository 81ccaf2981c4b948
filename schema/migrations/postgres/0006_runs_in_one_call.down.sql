DROP FUNCTION runlog_apply_task_runs(task_runs[], text[], text[], text[], text[]);
DROP FUNCTION runlog_apply_flow_runs(flow_runs[], text[], text[], text[], text[]);
