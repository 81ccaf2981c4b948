-- Run history (/task_runs/history) reads a range of task runs by expected start time, and the
-- UI dashboard's counts (/ui/task_runs/dashboard/counts) a range by start time; without these
-- both read every task run. Flow runs already have flow_runs_expected_start (0002).
CREATE INDEX task_runs_expected_start ON task_runs (expected_start_time);
CREATE INDEX task_runs_start ON task_runs (start_time);
-- /ui/flows/next-runs: each flow's Scheduled run due soonest, one probe per flow.
CREATE INDEX flow_runs_flow_scheduled ON flow_runs (flow_id, state_type, next_scheduled_start_time);
