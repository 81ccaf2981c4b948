DROP TABLE logs;
DROP TABLE task_run_tags;
DROP TABLE task_runs;
DROP TABLE flow_run_tags;
DROP TABLE flow_runs;
DROP TABLE flows;
