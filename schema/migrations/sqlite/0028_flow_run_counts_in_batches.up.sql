-- flow_run_counts (0025) kept by the runs projection instead of triggers on flow_runs and
-- flow_run_tags (projections/runs_writer.py, FLOW_RUN_COUNTS): it knows each run's counts
-- before and after a group-commit batch, sums their changes over the batch and adds them with
-- one upsert per changed count, in the append's transaction, so the table stays exact at every
-- snapshot. The row-level triggers (0027) wrote six or more count rows per state change, about
-- 15 µs of the process's CPU each time. The counts kept so far are right: the triggers kept
-- them until this transaction.
DROP TRIGGER flow_run_counts_tag_update;
DROP TRIGGER flow_run_counts_tag_delete;
DROP TRIGGER flow_run_counts_tag_insert;
DROP TRIGGER flow_run_counts_update;
DROP TRIGGER flow_run_counts_delete;
DROP TRIGGER flow_run_counts_insert;
