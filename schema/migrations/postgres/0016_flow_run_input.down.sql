DROP TABLE flow_run_inputs;
