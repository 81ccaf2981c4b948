-- flow_run_counts gets the 'run' rows again per hour of each time a run is searched by: its
-- expected start ('expected_hour') and its start, the expected one until it starts
-- ('start_hour'; the start_time filter reads COALESCE(start_time, expected_start_time)); key:
-- the hour since the epoch, zero-padded to 10 digits (runs_writer.hour_key), none before it.
-- A count over a time range then sums the rows of its whole hours and counts only the runs of
-- its edges (api/queries/run_counts.py). Counted over flow_runs, a day of a million runs over
-- 30 days read 33,000 runs, each from its own heap page where the visibility map is not set
-- (no VACUUM since they were written: 0.3-0.9 s). (SQLite's 0035 also adds its trigram index
-- of run names; PostgreSQL has had one since 0030.)
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'expected_hour', lpad((expected_start_time / 3600000000)::text, 10, '0'), flow_id,
       COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs WHERE expected_start_time >= 0 GROUP BY 2, 3, 4, 5;
INSERT INTO flow_run_counts (dim, key, flow_id, state_type, state_name, n)
SELECT 'start_hour', lpad((COALESCE(start_time, expected_start_time) / 3600000000)::text, 10, '0'), flow_id,
       COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs WHERE COALESCE(start_time, expected_start_time) >= 0 GROUP BY 2, 3, 4, 5;
