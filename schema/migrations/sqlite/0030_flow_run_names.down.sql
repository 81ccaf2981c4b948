DROP TABLE flow_run_names;
