-- flow_run_counts (0025) without the 'deployment' and 'queue' rows of runs that have no
-- deployment or no work queue (key ''): each repeated the run's own 'run' row, and keeping them
-- was two of the six rows a state change of such a run wrote, each an upsert on a small hot
-- table. The runs projection no longer writes them (projections/runs_writer.py,
-- FLOW_RUN_COUNTS); /flow_runs/count counts the runs without a deployment as the 'run' rows
-- less the 'deployment' rows (api/queries/run_counts.py), and the queue filters never matched
-- key ''.
DELETE FROM flow_run_counts WHERE dim IN ('deployment', 'queue') AND key = '';
