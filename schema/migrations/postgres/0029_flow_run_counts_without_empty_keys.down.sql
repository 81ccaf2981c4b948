-- The rows of runs without a deployment or a work queue again, counted from flow_runs as 0025
-- did (the runs projection kept flow_runs and the other counts in step until now).
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'deployment', '', flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs WHERE deployment_id IS NULL GROUP BY 3, 4, 5;
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'queue', '', flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs WHERE work_queue_id IS NULL GROUP BY 3, 4, 5;
