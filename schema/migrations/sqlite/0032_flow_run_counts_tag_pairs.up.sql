-- flow_run_counts gets a row per pair of a run's distinct tags (dim 'tag_pair', key: the lesser
-- tag, the unit separator, the other; projections/runs_writer.py, tag_pair), under its flow and
-- current state, so that a count of two tags is a sum of rows (api/queries/run_counts.py):
-- all_ of a and b is their pair's rows, any_ of them a's and b's less their pair's. Counted
-- over flow_runs they read every run of both tags (0.6-2.4 s at a million runs). The runs
-- projection keeps them from now on; the pairs of the runs already stored are counted here
-- from flow_run_tags (a run's distinct tags), as 0025 counted the rest.
-- A run with more than 8 distinct tags (PAIRED_TAGS_AT_MOST) is in no pair (its 28+ pairs would
-- all move at each state change) but under 'tag_unpaired', key: the tag, once per tag of it.
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'tag_pair', a.tag || char(31) || b.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''),
       count(*)
FROM flow_run_tags a
JOIN flow_run_tags b ON b.run_id = a.run_id AND b.tag > a.tag
JOIN flow_runs r ON r.id = a.run_id
WHERE a.run_id NOT IN (SELECT run_id FROM flow_run_tags GROUP BY run_id HAVING count(*) > 8)
GROUP BY 2, 3, 4, 5;
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'tag_unpaired', t.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), count(*)
FROM flow_run_tags t
JOIN flow_runs r ON r.id = t.run_id
WHERE t.run_id IN (SELECT run_id FROM flow_run_tags GROUP BY run_id HAVING count(*) > 8)
GROUP BY 2, 3, 4, 5;
