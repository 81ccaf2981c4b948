DROP INDEX flow_runs_flow_scheduled;
DROP INDEX task_runs_start;
DROP INDEX task_runs_expected_start;
