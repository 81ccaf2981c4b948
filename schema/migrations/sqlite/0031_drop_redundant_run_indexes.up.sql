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
