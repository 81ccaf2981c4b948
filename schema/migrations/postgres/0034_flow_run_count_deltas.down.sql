-- The deltas folded into flow_run_counts first, so the counts stay exact.
DROP VIEW flow_run_counts_totals;
INSERT INTO flow_run_counts AS t (dim, key, flow_id, state_type, state_name, n)
SELECT dim, key, flow_id, state_type, state_name, sum(n) FROM flow_run_count_deltas
GROUP BY dim, key, flow_id, state_type, state_name
ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = t.n + excluded.n;
DROP TABLE flow_run_count_deltas;
