DROP TABLE flow_run_queues;
DROP TABLE workers;
DROP TABLE work_queues;
DROP TABLE work_pools;
