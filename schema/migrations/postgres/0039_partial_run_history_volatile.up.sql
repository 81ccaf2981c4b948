-- run_history_runs_volatile serves the read side's two lookups of the runs whose share of the
-- history depends on "now" (`kind = ? AND volatile = 1` / `= 2` and a range of expected start,
-- projections/run_history.py), yet it held every run, settled ones (volatile 0) included: each
-- change of a run is a non-HOT update (it moves `volatile`), so it wrote an entry here even for
-- a run that had just settled and that no lookup reads again. Partial on `volatile <> 0`, the
-- index holds only the runs not yet settled, a run's last change writes no entry (EXPLAIN
-- (ANALYZE, WAL) of 2,000 Running runs settling: 4.09 -> 3.08 WAL records and 8.2 -> 6.2 buffer
-- hits per update), the volatile lookups still read it (`volatile = 1` implies its predicate),
-- and the fold's lookup of runs by id cannot take it for `kind` alone (auto_explain had shown a
-- bench run's lookup scanning it so before that lookup became one key probe per id).
DROP INDEX run_history_runs_volatile;
CREATE INDEX run_history_runs_volatile ON run_history_runs (kind, volatile, expected_start_time) WHERE volatile <> 0;
