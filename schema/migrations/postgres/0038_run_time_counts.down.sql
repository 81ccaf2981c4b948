DROP INDEX flow_runs_flow_scheduled;
CREATE INDEX flow_runs_flow_scheduled ON flow_runs (flow_id, state_type, next_scheduled_start_time);
DROP INDEX flow_runs_started;
CREATE INDEX flow_runs_started ON flow_runs ((COALESCE(start_time, expected_start_time)), id);
ALTER TABLE flow_runs RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);
-- The expression index's statistics, as in the up file.
DO $$
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM flow_runs LIMIT 10000) AS first_rows) >= 10000 THEN
        ANALYZE flow_runs;
    END IF;
END
$$;
