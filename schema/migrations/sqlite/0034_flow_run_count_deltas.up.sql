-- PostgreSQL's 0034 appends flow_run_counts' amounts to a table of deltas, which it folds into
-- the rows every second: on SQLite the one writer adds to the rows (no row versions pile up).
SELECT 1;
