DROP INDEX flow_runs_flow_scheduled;
CREATE INDEX flow_runs_flow_scheduled ON flow_runs (flow_id, state_type, next_scheduled_start_time);
