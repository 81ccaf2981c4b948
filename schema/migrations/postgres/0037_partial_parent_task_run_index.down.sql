DROP INDEX flow_runs_parent_task_run;
CREATE INDEX flow_runs_parent_task_run ON flow_runs (parent_task_run_id);
