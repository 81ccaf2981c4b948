DROP TABLE run_history_cells;
DROP TABLE run_history_runs;
