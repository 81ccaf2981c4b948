-- flow_run_counts (0025) kept by the runs projection instead of triggers on flow_runs
-- (projections/runs_writer.py, FLOW_RUN_COUNTS): it knows each run's counts before and after a
-- group-commit batch, sums their changes over the batch and adds them in one statement, in the
-- append's own statement or transaction, so the table stays exact at every snapshot. The
-- statement-level triggers parsed every written run's JSON view for its tags, old and new
-- (the count rows written are the same either way: README, benchmarks). The counts kept so
-- far are right: the triggers kept them until this transaction.
DROP TRIGGER flow_run_counts_delete ON flow_runs;
DROP TRIGGER flow_run_counts_update ON flow_runs;
DROP TRIGGER flow_run_counts_insert ON flow_runs;
DROP FUNCTION runlog_count_flow_runs();
