ALTER TABLE flow_run_counts RESET (fillfactor);
CREATE INDEX flow_runs_work_queue ON flow_runs (work_queue_id, id);
CREATE INDEX flow_runs_deployment ON flow_runs (deployment_id, next_scheduled_start_time);
CREATE INDEX flow_runs_flow ON flow_runs (flow_id);
