-- Two flow_runs indexes that others lead with: every row written pays for each index (on
-- PostgreSQL a state change is never a HOT update, so it adds an entry to every one).
-- flow_id: flow_runs_flow_scheduled (flow_id, state_type, next_scheduled_start_time) and
-- flow_runs_idempotency serve every lookup by flow (the runs of a flow, the filter's flow_id,
-- a flow's next scheduled run).
-- (deployment_id, next_scheduled_start_time): every query by deployment names it with an
-- equality or IN, which flow_runs_deployment_scheduled (partial on deployment_id IS NOT NULL,
-- which an equality implies) serves; the scheduler's, which also order or range on
-- next_scheduled_start_time, ask for the Scheduled state and so read that index's ranges.
DROP INDEX flow_runs_flow;
DROP INDEX flow_runs_deployment;
-- (work_queue_id, id), which 0023 added for the work pool and queue filters because the planner
-- did not infer work_queue_id IS NOT NULL through their semi-join: they now say it
-- (api/queries/run_filters.py), and read flow_runs_queue_scheduled, partial on it, as SQLite does.
DROP INDEX flow_runs_work_queue;

-- flow_run_counts is a few hot rows that every append batch updates (projections/runs_writer.py):
-- with full pages most updates could not stay on their page (HOT), so each added an index entry
-- and left a dead version that the next batch's ON CONFLICT probe walked past (bench_cpu_split:
-- 41% HOT, 72 pages for 48 rows). With room on each page they stay HOT (93%), and PostgreSQL's
-- CPU per transition drops by about 40 us. The table is small (flows x states x dimensions), so
-- the space is cheap. A rebuild copies rows into this table, so the setting stays.
ALTER TABLE flow_run_counts SET (fillfactor = 10);
