DROP INDEX task_runs_start;
DROP INDEX task_runs_expected_start;
