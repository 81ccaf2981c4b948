DROP INDEX run_history_runs_volatile;
CREATE INDEX run_history_runs_volatile ON run_history_runs (kind, volatile, expected_start_time);
