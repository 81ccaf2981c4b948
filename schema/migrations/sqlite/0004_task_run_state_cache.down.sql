DROP TABLE task_run_state_cache;
