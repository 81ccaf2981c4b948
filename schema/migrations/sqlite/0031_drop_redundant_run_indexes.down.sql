CREATE INDEX flow_runs_deployment ON flow_runs (deployment_id, next_scheduled_start_time);
CREATE INDEX flow_runs_flow ON flow_runs (flow_id);
